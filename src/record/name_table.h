#pragma once
// Internal to the record layer: the one table of names an enum is stored under (states,
// control commands), read both ways.

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace det::record::detail {

template <typename E, size_t N>
const char* name_in(const std::array<std::pair<E, const char*>, N>& table, E value) {
  for (const auto& [v, name] : table)
    if (v == value) return name;
  return "?";  // unreachable: every enumerator is in its table
}

template <typename E, size_t N>
std::optional<E> value_in(const std::array<std::pair<E, const char*>, N>& table,
                          std::string_view name) {
  for (const auto& [v, n] : table)
    if (name == n) return v;
  return std::nullopt;
}

template <typename E, size_t N>
std::string names_in(const std::array<std::pair<E, const char*>, N>& table) {
  std::string names;
  for (const auto& entry : table) names += std::string(names.empty() ? "" : ", ") + entry.second;
  return names;
}

}  // namespace det::record::detail
