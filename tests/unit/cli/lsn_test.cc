#include "cli/lsn.h"

#include <gtest/gtest.h>

namespace pgbranch::cli {
namespace {

TEST(LsnTest, ParsesPostgresForm) {
  EXPECT_EQ(*ParseLsn("0/1A2B3C8"), 0x1A2B3C8u);
  EXPECT_EQ(*ParseLsn("16/B374D848"), (uint64_t{0x16} << 32) | 0xB374D848u);
  EXPECT_EQ(*ParseLsn("0/0"), 0u);
  EXPECT_EQ(*ParseLsn("ffffffff/ffffffff"), ~uint64_t{0});
  EXPECT_EQ(*ParseLsn(" 0/16 "), 0x16u);
}

TEST(LsnTest, ParsesDecimal) {
  EXPECT_EQ(*ParseLsn("27443144"), 27443144u);
  EXPECT_EQ(*ParseLsn("0"), 0u);
  EXPECT_EQ(*ParseLsn("18446744073709551615"), ~uint64_t{0});
}

TEST(LsnTest, RejectsMalformed) {
  for (const char* bad : {"", "/", "0/", "/1", "0/zz", "1/2/3", "123456789/0", "-5", "+5", "1e6",
                          "0x10", "18446744073709551616", "abc"}) {
    absl::StatusOr<uint64_t> lsn = ParseLsn(bad);
    EXPECT_FALSE(lsn.ok()) << bad;
    EXPECT_NE(lsn.status().message().find("0/1A2B3C8"), std::string::npos) << bad;
  }
}

TEST(LsnTest, FormatsAsPostgresDoes) {
  EXPECT_EQ(FormatLsn(0x1A2B3C8), "0/1A2B3C8");
  EXPECT_EQ(FormatLsn((uint64_t{0x16} << 32) | 0xB374D848u), "16/B374D848");
  EXPECT_EQ(FormatLsn(0), "0/0");
  for (uint64_t v : {uint64_t{1}, uint64_t{0x100000000}, ~uint64_t{0}, uint64_t{27443144}}) {
    EXPECT_EQ(*ParseLsn(FormatLsn(v)), v);
  }
}

}  // namespace
}  // namespace pgbranch::cli
