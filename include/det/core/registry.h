#pragma once
/// \file
/// The trial registry: `DET_REGISTER_TRIAL(MyTrial, "my_trial")` makes a trial available to
/// det-run (and to det::main in a user's own executable) under `entrypoint: my_trial`.

#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "det/core/trial.h"

namespace det {

/// Builds a trial for a context.
using TrialFactory = std::function<std::unique_ptr<Trial>(TrialContext&)>;
/// Checks a trial's own settings (its `data:` keys, the hyperparameters it reads) without
/// building it or reading data; throws det::ConfigError naming the key (det::Error for a trial
/// that overrides both evaluate methods). `det-run validate-config` runs it, and so does every
/// run before it builds the trial: one path.
using TrialConfigCheck = std::function<void(const TrialContext&)>;

namespace detail {
template <class T, class = void>
struct HasCheckConfig : std::false_type {};
template <class T>
struct HasCheckConfig<T,
                      std::void_t<decltype(T::check_config(std::declval<const TrialContext&>()))>>
    : std::true_type {};
/// The type of `&T::evaluate_batch`, or void where it cannot be named (T declares it private or
/// overloads it: Trial's is public and single, so T declares its own).
template <class T, class = void>
struct EvaluateBatchMember {
  using type = void;
};
template <class T>
struct EvaluateBatchMember<T, std::void_t<decltype(&T::evaluate_batch)>> {
  using type = decltype(&T::evaluate_batch);
};
/// The same for `&T::evaluate_full_dataset`.
template <class T, class = void>
struct EvaluateFullDatasetMember {
  using type = void;
};
template <class T>
struct EvaluateFullDatasetMember<T, std::void_t<decltype(&T::evaluate_full_dataset)>> {
  using type = decltype(&T::evaluate_full_dataset);
};
/// Whether trial class `T` overrides Trial::evaluate_batch: `&T::evaluate_batch` has Trial's
/// member type exactly when no class between Trial and T declares it.
template <class T>
constexpr bool overrides_evaluate_batch =
    !std::is_same_v<typename EvaluateBatchMember<T>::type,
                    Metrics (Trial::*)(data::Batch&, int64_t)>;
/// Whether trial class `T` overrides Trial::evaluate_full_dataset.
template <class T>
constexpr bool overrides_evaluate_full_dataset =
    !std::is_same_v<typename EvaluateFullDatasetMember<T>::type,
                    Metrics (Trial::*)(data::DataLoader&)>;

/// The settings check of trial class `T` registered as `name`: refuses a class that overrides
/// both evaluate methods (only one of them could run), then runs `T::check_config` when the
/// class declares `static void check_config(const TrialContext&)`.
template <class T>
TrialConfigCheck config_check_of(const std::string& name) {
  return [name]([[maybe_unused]] const TrialContext& context) {
    if constexpr (overrides_evaluate_batch<T> && overrides_evaluate_full_dataset<T>)
      throw Error("trial '" + name +
                  "' overrides both evaluate_batch and evaluate_full_dataset; keep one: "
                  "evaluate_batch (every rank, batch by batch over its shard) or "
                  "evaluate_full_dataset (the chief alone, over the whole validation set)");
    if constexpr (HasCheckConfig<T>::value) T::check_config(context);
  };
}
}  // namespace detail

/// Name -> factory map of every linked-in trial.
class TrialRegistry {
 public:
  /// The process-wide registry (created on first use, so registrars may run in any order).
  static TrialRegistry& instance();
  /// Adds a trial under `name` (and its C++ class name, so `model_def:ClassName` also resolves),
  /// with its settings check, if it has one.
  void add(const std::string& name, const std::string& class_name, TrialFactory factory,
           TrialConfigCheck check = {});
  /// The factory for an entrypoint: a registered name, a class name, or "module:ClassName".
  /// Throws ConfigError listing the registered names (with a did-you-mean) if none matches.
  const TrialFactory& find(const std::string& entrypoint,
                           const std::string& config_source = "") const;
  /// Runs the settings check of the trial registered for `entrypoint`, when it has one (a name
  /// that is not registered has none: find() reports it).
  void check_config(const std::string& entrypoint, const TrialContext& context) const;
  /// Registered names, sorted.
  std::vector<std::string> names() const;

 private:
  struct Entry {
    std::string name, class_name;
    TrialFactory factory;
    TrialConfigCheck check;
  };
  const Entry* lookup(const std::string& entrypoint) const;
  std::vector<Entry> entries_;
};

/// Registers a trial at static-initialisation time (used by DET_REGISTER_TRIAL).
struct TrialRegistrar {
  /// Adds the trial to TrialRegistry::instance() (see TrialRegistry::add).
  TrialRegistrar(const std::string& name, const std::string& class_name, TrialFactory factory,
                 TrialConfigCheck check = {}) {
    TrialRegistry::instance().add(name, class_name, std::move(factory), std::move(check));
  }
};

}  // namespace det

/// Registers `Class` (constructible from `det::TrialContext&`) as entrypoint `name`. A class
/// with `static void check_config(const det::TrialContext&)` has its settings checked by
/// `det-run validate-config` and before every run (TrialConfigCheck); so is a class that
/// overrides both evaluate methods, which is refused there.
#define DET_REGISTER_TRIAL(Class, name)                               \
  static const ::det::TrialRegistrar det_trial_registrar_##Class(     \
      name, #Class,                                                   \
      [](::det::TrialContext& ctx) -> std::unique_ptr<::det::Trial> { \
        return std::make_unique<Class>(ctx);                          \
      },                                                              \
      ::det::detail::config_check_of<Class>(name))
