#include <cstdint>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "compute/postgres_process.h"

namespace pgbranch::compute {
namespace {

// A pg_control image as PostgreSQL 15 writes it (offsets checked against pg_controldata).
std::string Image(int32_t version, int32_t state, int32_t wal_level, size_t size = 8192) {
  std::string b(size, '\0');
  auto put = [&](size_t off, int32_t v) {
    if (off + 4 <= b.size()) memcpy(b.data() + off, &v, 4);
  };
  put(8, version);
  put(12, 202209061);  // catalog version
  put(16, state);
  put(172, wal_level);
  return b;
}

TEST(PgControlTest, ParsesStateAndWalLevel) {
  absl::StatusOr<PgControlSummary> c = ParsePgControl(Image(1300, 6, 1));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->state, 6);
  EXPECT_EQ(c->StateName(), "in production");
  EXPECT_FALSE(c->clean());
  EXPECT_EQ(c->wal_level, PgControlSummary::kWalLevelReplica);

  c = ParsePgControl(Image(1300, 1, 2));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->clean());
  EXPECT_EQ(c->StateName(), "shut down");

  // Shut down in recovery, shutting down, in crash recovery: replay needed.
  for (int state : {2, 3, 4, 5}) {
    c = ParsePgControl(Image(1300, state, 1));
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_FALSE(c->clean()) << c->StateName();
  }
}

TEST(PgControlTest, RejectsWhatItCannotRead) {
  EXPECT_FALSE(ParsePgControl(Image(1300, 6, 1, 100)).ok());  // too short
  EXPECT_FALSE(ParsePgControl(Image(1201, 6, 1)).ok());       // PostgreSQL 12
  EXPECT_FALSE(ParsePgControl(Image(1300, 9, 1)).ok());       // unknown state
  EXPECT_FALSE(ParsePgControl(Image(1300, 6, 7)).ok());       // unknown wal_level
  EXPECT_FALSE(ParsePgControl("").ok());
}

}  // namespace
}  // namespace pgbranch::compute
