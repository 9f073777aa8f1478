// The strict readers' wording, one for every reader of user-supplied settings: the config
// file's YAML (detail::Node) and Args over data, hyperparameters and TRIALS.json (private to
// src/config).
#pragma once

#include <string>
#include <vector>

namespace det::config::detail {

/// "unknown key 'lr_', did you mean 'lr'? (allowed here: lr, momentum)".
std::string unknown_key_message(const std::string& key, const std::vector<std::string>& known);
/// "expected <expected>, found <found>".
std::string expected_message(const std::string& expected, const std::string& found);
/// "expected one of a, b, found <found>", with "did you mean" when `value` is close to one.
std::string enum_message(const std::string& value, const std::string& found,
                         const std::vector<std::string>& allowed);

}  // namespace det::config::detail
