// The experiment config's schema: one table of every key det knows, which drives reading,
// defaults (the ExperimentConfig members'), the implemented/refused checks, to_json and the key
// list of docs/configs.md (private to src/config; experiment_config.cpp walks it).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "det/config/experiment_config.h"
#include "yaml_tree.h"

namespace det::config::detail {

/// What a reader writes into: the config and where each value under data/hyperparameters was.
struct Reading {
  ExperimentConfig& config;
  SourceMap& sources;
};

/// One key of the config file.
struct Key {
  /// What det does with a key besides reading it.
  enum class Check {
    kNone,     ///< read (or only accepted), nothing said
    kNotice,   ///< a notice when `applies`: no effect here
    kRefused,  ///< a ConfigError when `applies`: not implemented
  };
  using Reader = std::function<void(const Node&, Reading&)>;
  using Writer =
      std::function<void(const ExperimentConfig&, nlohmann::json& parent, const std::string& name)>;

  std::string path;  ///< "optimizations.mixed_precision".
  /// A mapping whose keys are the table's keys under `path` (read and written key by key).
  bool section = false;
  /// Reads the value (present and not null, or always when `always`); null: accepted only (its
  /// parent reads it, or it has no effect here). A section's runs before its keys.
  Reader read;
  bool always = false;  ///< Read even when absent or null (the reader decides).
  /// Writes the value into its parent's JSON object under `name`; null: never written. A
  /// section is written when `written` holds (or always without it).
  Writer write;
  std::function<bool(const ExperimentConfig&)> written;  ///< Null: whenever `write` is set.
  /// Only for these values of the section's variant (searcher.name, storage type); empty: all.
  std::vector<std::string> variants;
  /// The section's variant for to_json (searcher.name).
  std::function<std::string(const ExperimentConfig&)> variant_of;
  std::string required;  ///< Non-empty: a ConfigError with this message when it is missing.
  Check check = Check::kNone;
  std::function<bool(const Node&)> applies;  ///< When the check speaks (given the value).
  std::string why;                           ///< What the notice or error says.

  /// The last part of the path.
  std::string name() const { return path.substr(path.rfind('.') + 1); }
  /// The path of the section it is in ("" at the top level).
  std::string parent() const {
    const auto dot = path.rfind('.');
    return dot == std::string::npos ? "" : path.substr(0, dot);
  }
  /// Whether it belongs to a section of this variant ("" = any).
  bool for_variant(const std::string& v) const;

  /// This key with a notice when `when` holds.
  Key notice(std::function<bool(const Node&)> when, std::string reason) &&;
  /// This key with a ConfigError (not implemented) when `when` holds.
  Key refuse(std::function<bool(const Node&)> when, std::string reason) &&;
  /// This key only in these variants of its section.
  Key only(std::vector<std::string> values) &&;
  /// This key required, with `message` when it is missing.
  Key need(std::string message) &&;
  /// This key written only when `when` holds.
  Key when(std::function<bool(const ExperimentConfig&)> pred) &&;
};

/// Every key, sections before their keys, each section's keys in the order they are read.
const std::vector<Key>& schema();

/// The names of the keys directly under `section` ("" = top level) allowed in `variant` ("" =
/// any), in table order: the keys a mapping may hold.
std::vector<std::string> keys_under(const std::string& section, const std::string& variant = "");

/// Reads the keys under `section` from `n` (which is that section's mapping), in table order.
void read_keys(const Node& n, const std::string& section, Reading& r,
               const std::string& variant = "");

/// The keys under `section` of `c` as a JSON object.
nlohmann::json write_keys(const ExperimentConfig& c, const std::string& section);

/// The schema's notices and refusals over a parsed document (ConfigError for a refused one).
void check_implemented(const Node& root, ExperimentConfig& c);

}  // namespace det::config::detail
