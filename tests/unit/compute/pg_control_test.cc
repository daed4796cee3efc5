#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "compute/postgres_process.h"
#include "compute/standby_settings.h"

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

TEST(PgControlTest, ParsesThePrimarysHotStandbySettings) {
  std::string b = Image(1300, 6, 1);
  const int32_t values[] = {200, 8, 10, 5, 128};  // as `pg_controldata` lists them
  for (size_t i = 0; i < 5; ++i) memcpy(b.data() + 180 + 4 * i, &values[i], 4);
  absl::StatusOr<PgControlSummary> c = ParsePgControl(b);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->max_connections, 200);
  EXPECT_EQ(c->max_worker_processes, 8);
  EXPECT_EQ(c->max_wal_senders, 10);
  EXPECT_EQ(c->max_prepared_xacts, 5);
  EXPECT_EQ(c->max_locks_per_xact, 128);
  // Long enough for state and wal_level but not the settings: unknown, not zero.
  c = ParsePgControl(Image(1300, 6, 1, 190));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->max_connections, -1);
}

TEST(PgControlTest, ParsesTheRedoPointTimelineAndSegmentSize) {
  // Offsets as in a pg_control of `initdb --wal-segsize=1` (pg_controldata: REDO location
  // 0/600768, TimeLineID 1, Bytes per WAL segment 1048576).
  std::string b = Image(1300, 6, 1);
  const uint64_t redo = 0x600768;
  const int32_t tli = 3, seg = 1 << 20;
  memcpy(b.data() + 40, &redo, 8);
  memcpy(b.data() + 48, &tli, 4);
  memcpy(b.data() + 228, &seg, 4);
  absl::StatusOr<PgControlSummary> c = ParsePgControl(b);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->redo_lsn, redo);
  EXPECT_EQ(c->timeline, 3u);
  EXPECT_EQ(c->wal_segment_size, 1u << 20);
  c = ParsePgControl(Image(1300, 6, 1, 200));  // too short for them: unknown
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->wal_segment_size, 0u);
}

TEST(StandbySettingsTest, RaisesOnlyWhatIsBelowThePrimary) {
  PgControlSummary primary;
  primary.max_connections = 200;     // above the default 100
  primary.max_worker_processes = 8;  // equal to the default
  primary.max_wal_senders = 10;      // equal to the default
  primary.max_prepared_xacts = 5;    // above the default 0
  primary.max_locks_per_xact = 64;   // below the endpoint's own 256
  std::map<std::string, std::string> params = {{"max_locks_per_transaction", "256"},
                                               {"work_mem", "8MB"}};
  std::vector<std::string> raised = ApplyStandbyMinimums(primary, &params);
  EXPECT_EQ(raised, (std::vector<std::string>{"max_connections: 100 -> 200",
                                              "max_prepared_transactions: 0 -> 5"}));
  EXPECT_EQ(params, (std::map<std::string, std::string>{{"max_connections", "200"},
                                                        {"max_locks_per_transaction", "256"},
                                                        {"max_prepared_transactions", "5"},
                                                        {"work_mem", "8MB"}}));
  // Idempotent; unknown primary values (-1) and unparsable values are left alone.
  EXPECT_TRUE(ApplyStandbyMinimums(primary, &params).empty());
  PgControlSummary unknown;
  std::map<std::string, std::string> odd = {{"max_connections", "lots"}};
  EXPECT_TRUE(ApplyStandbyMinimums(unknown, &odd).empty());
  unknown.max_connections = 300;
  EXPECT_TRUE(ApplyStandbyMinimums(unknown, &odd).empty());
  EXPECT_EQ(odd.at("max_connections"), "lots");
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
