#include "det/util/strings.h"

#include <gtest/gtest.h>

#include "det/util/error.h"

namespace det::util {
TEST(Strings, DidYouMean) {
  EXPECT_EQ(closest_match("serchr", {"searcher", "resources", "name"}), "searcher");
  EXPECT_EQ(closest_match("zzzzzz", {"searcher", "resources"}), "");
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
}

namespace {

TEST(Strings, QuoteKeepsShortTextWhole) {
  EXPECT_EQ(quote("adamw"), "'adamw'");
  EXPECT_EQ(quote(""), "''");
  EXPECT_EQ(shorten("adamw"), "adamw");
}

TEST(Strings, QuoteCutsLongTextAndSaysHowLong) {
  std::string huge(1 << 20, 'a');
  EXPECT_EQ(quote(huge, 5), "'aaaaa...' (1048576 bytes)");
  EXPECT_EQ(shorten(huge, 5), "aaaaa... (1048576 bytes)");
  EXPECT_EQ(quote(std::string(60, 'b')),
            "'" + std::string(60, 'b') + "'");  // exactly the limit: whole
  EXPECT_EQ(quote(std::string(61, 'b')), "'" + std::string(60, 'b') + "...' (61 bytes)");
}

TEST(Strings, QuoteKeepsTheMessageOnOneLine) {
  EXPECT_EQ(quote("a\nb\tc\x01"), "'a\\nb\\tc\\x01'");
}

TEST(Strings, QuoteNeverSplitsAUtf8Character) {
  const std::string e_acute = "\xc3\xa9";  // é: two bytes, one character
  std::string s;
  for (int i = 0; i < 10; ++i) s += e_acute;
  EXPECT_EQ(shorten(s, 3), e_acute + e_acute + e_acute + "... (20 bytes)");
}

// Issue 23 item 10: every det::Error is one line whatever user text it carries: a file name
// with a newline is not cut, a NUL does not end the message, an ESC never reaches a terminal.
TEST(Strings, ErrorsEscapeControlCharactersOnce) {
  const std::string name = std::string("bad\nname\x1b[31m\0tail", 18);
  const Error e("cannot read " + name + ": not a regular file");
  EXPECT_EQ(std::string(e.what()), "cannot read bad\\nname\\x1b[31m\\x00tail: not a regular file");
  EXPECT_EQ(one_line("plain text, \xc3\xa9 too"), "plain text, \xc3\xa9 too");
  // Escaped once: an error built from an error's message does not escape the backslashes again.
  const Error again(std::string("outer: ") + e.what());
  EXPECT_EQ(std::string(again.what()), "outer: " + std::string(e.what()));
}

}  // namespace
}  // namespace det::util
