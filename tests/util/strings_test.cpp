#include "det/util/strings.h"

#include <gtest/gtest.h>

namespace det::util {

TEST(Strings, DidYouMean) {
  EXPECT_EQ(closest_match("serchr", {"searcher", "resources", "name"}), "searcher");
  EXPECT_EQ(closest_match("zzzzzz", {"searcher", "resources"}), "");
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
}

TEST(Strings, QuoteCutsLongUserTextAndHidesControlCharacters) {
  EXPECT_EQ(quote("short"), "short");
  EXPECT_EQ(quote("a\nb\x01"), "a?b?");
  std::string big(1 << 20, 'x');
  std::string q = quote(big, 10);
  EXPECT_EQ(q, "xxxxxxxxxx... (1048576 characters)");
}

}  // namespace det::util
