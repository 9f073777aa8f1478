#pragma once
/// \file
/// The trial registry: `DET_REGISTER_TRIAL(MyTrial, "my_trial")` makes a trial available to
/// det-run (and to det::main in a user's own executable) under `entrypoint: my_trial`.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "det/core/trial.h"

namespace det {

/// Builds a trial for a context.
using TrialFactory = std::function<std::unique_ptr<Trial>(TrialContext&)>;

/// Name -> factory map of every linked-in trial.
class TrialRegistry {
 public:
  /// The process-wide registry (created on first use, so registrars may run in any order).
  static TrialRegistry& instance();
  /// Adds a trial under `name` (and its C++ class name, so `model_def:ClassName` also resolves).
  void add(const std::string& name, const std::string& class_name, TrialFactory factory);
  /// The factory for an entrypoint: a registered name, a class name, or "module:ClassName".
  /// Throws ConfigError listing the registered names (with a did-you-mean) if none matches.
  const TrialFactory& find(const std::string& entrypoint,
                           const std::string& config_source = "") const;
  /// Registered names, sorted.
  std::vector<std::string> names() const;

 private:
  struct Entry {
    std::string name, class_name;
    TrialFactory factory;
  };
  std::vector<Entry> entries_;
};

/// Registers a trial at static-initialisation time (used by DET_REGISTER_TRIAL).
struct TrialRegistrar {
  /// Adds the trial to TrialRegistry::instance() (see TrialRegistry::add).
  TrialRegistrar(const std::string& name, const std::string& class_name, TrialFactory factory) {
    TrialRegistry::instance().add(name, class_name, std::move(factory));
  }
};

}  // namespace det

/// Registers `Class` (constructible from `det::TrialContext&`) as entrypoint `name`.
#define DET_REGISTER_TRIAL(Class, name)                                             \
  static const ::det::TrialRegistrar det_trial_registrar_##Class(                   \
      name, #Class, [](::det::TrialContext& ctx) -> std::unique_ptr<::det::Trial> { \
        return std::make_unique<Class>(ctx);                                        \
      })
