// docs/configs.md lists every key of the config schema between its keys markers: a key added to
// the table and not to the doc, or left in the doc after it left the table, fails here.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "det/config/experiment_config.h"

namespace det::config {
namespace {

const char* kBegin = "<!-- keys:begin -->";
const char* kEnd = "<!-- keys:end -->";

// The doc's list as the table gives it: one line per top-level key, its keys after a colon.
std::string expected_list() {
  std::ostringstream out;
  std::string top;
  bool first_child = true;
  for (const auto& path : config_keys()) {
    const auto dot = path.find('.');
    if (dot == std::string::npos) {
      out << (top.empty() ? "" : "\n") << "- `" << path << "`";
      top = path;
      first_child = true;
      continue;
    }
    out << (first_child ? ": " : ", ") << "`" << path.substr(dot + 1) << "`";
    first_child = false;
  }
  return out.str() + "\n";
}

std::optional<std::string> doc_list() {
  std::ifstream in(std::string(DET_SOURCE_DIR) + "/docs/configs.md");
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  const auto begin = doc.find(kBegin);
  const auto end = doc.find(kEnd);
  if (begin == std::string::npos || end == std::string::npos || end < begin) return std::nullopt;
  return doc.substr(begin + std::string(kBegin).size() + 1,
                    end - begin - std::string(kBegin).size() - 1);
}

// Every key path a list names: `top` and `top.child` for each `child` after its colon.
std::vector<std::string> paths_of(const std::string& list) {
  std::vector<std::string> paths;
  std::istringstream lines(list);
  const std::regex key("`([^`]+)`");
  for (std::string line; std::getline(lines, line);) {
    std::string top;
    for (auto it = std::sregex_iterator(line.begin(), line.end(), key);
         it != std::sregex_iterator(); ++it) {
      const std::string name = (*it)[1];
      paths.push_back(top.empty() ? name : top + "." + name);
      if (top.empty()) top = name;
    }
  }
  std::sort(paths.begin(), paths.end());
  return paths;
}

TEST(ConfigDoc, ListsEveryKeyOfTheSchemaAndNoOther) {
  const auto list = doc_list();
  ASSERT_TRUE(list) << "docs/configs.md has no " << kBegin << " ... " << kEnd << " list";
  const std::string& doc = *list;
  const auto in_doc = paths_of(doc);
  auto in_table = config_keys();
  std::sort(in_table.begin(), in_table.end());
  std::vector<std::string> missing, extra;
  std::set_difference(in_table.begin(), in_table.end(), in_doc.begin(), in_doc.end(),
                      std::back_inserter(missing));
  std::set_difference(in_doc.begin(), in_doc.end(), in_table.begin(), in_table.end(),
                      std::back_inserter(extra));
  for (const auto& k : missing) ADD_FAILURE() << "docs/configs.md does not list " << k;
  for (const auto& k : extra)
    ADD_FAILURE() << "docs/configs.md lists " << k << ", not in the schema";
  EXPECT_EQ(doc, expected_list()) << "the list in docs/configs.md, in the table's order:\n"
                                  << expected_list();
}

TEST(ConfigDoc, ThePathsOfAListLineAreItsKeyAndItsKeysUnderIt) {
  EXPECT_EQ(paths_of("- `a`: `b`, `c`\n- `d`\n"),
            (std::vector<std::string>{"a", "a.b", "a.c", "d"}));
}

}  // namespace
}  // namespace det::config
