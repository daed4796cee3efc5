#include "common/text_util.h"

#include "gtest/gtest.h"

namespace pgbranch {
namespace {

TEST(ArgListTest, RoundTripsArgumentsWithSpacesTabsAndNewlines) {
  std::vector<std::string> args = {"/var/log/pagefs.log", "--tenant", "a b\tc\nd", "-", "/mnt"};
  std::string m = EncodeArgList(args);
  EXPECT_EQ(m.back(), '\0');
  std::optional<std::vector<std::string>> back = DecodeArgList(m);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, args);
}

TEST(ArgListTest, EmptyStringsSurvive) {
  std::vector<std::string> args = {"/log", "", "x"};
  std::optional<std::vector<std::string>> back = DecodeArgList(EncodeArgList(args));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, args);
}

TEST(ArgListTest, RefusesAnEmptyOrUnterminatedMessage) {
  EXPECT_FALSE(DecodeArgList("").has_value());
  EXPECT_FALSE(DecodeArgList("/log").has_value());
  EXPECT_FALSE(DecodeArgList(std::string("/log\0--x", 8)).has_value());
}

}  // namespace
}  // namespace pgbranch
