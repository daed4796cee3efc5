#include "tests/bench/pagefs/recovery_phases.h"

#include "gtest/gtest.h"

namespace pgbranch::pagefs_bench {
namespace {

// A PostgreSQL 15 crash restart as logged with log_line_prefix '%m [%p] ' and log_checkpoints.
const char kLog[] =
    "2026-11-30 17:04:58.100 UTC [10] LOG:  database system was interrupted; last known up at "
    "2026-11-30 17:04:40 UTC\n"
    "2026-11-30 17:04:59.900 UTC [10] LOG:  redo starts at 0/5000028\n"
    "2026-11-30 17:05:00.350 UTC [10] LOG:  redo done at 0/7C00060 system usage: CPU: user: 0.31 "
    "s, system: 0.09 s, elapsed: 0.45 s\n"
    "2026-11-30 17:05:00.360 UTC [11] LOG:  checkpoint starting: end-of-recovery immediate wait\n"
    "2026-11-30 17:05:01.090 UTC [11] LOG:  checkpoint complete: wrote 3000 buffers (18.3%); "
    "write=0.2 s, sync=0.5 s\n"
    "2026-11-30 17:05:01.100 UTC [1] LOG:  database system is ready to accept connections\n";

TEST(RecoveryPhasesTest, ParsesRedoCheckpointAndWal) {
  RecoveryPhases p = ParseRecoveryPhases(kLog);
  EXPECT_NEAR(p.redo_s, 0.45, 1e-6);
  EXPECT_NEAR(p.checkpoint_s, 0.73, 1e-6);
  EXPECT_EQ(p.wal_bytes, 0x7C00060 - 0x5000028);
  EXPECT_NEAR(p.ReplayBytesPerSecond(), (0x7C00060 - 0x5000028) / 0.45, 1);
}

TEST(RecoveryPhasesTest, RedoAcrossMidnightAndLsnHighWord) {
  RecoveryPhases p = ParseRecoveryPhases(
      "2026-12-31 23:59:59.900 UTC [1] LOG:  redo starts at 1/FFFFFF00\n"
      "2027-01-01 00:00:00.150 UTC [1] LOG:  redo done at 2/00000100 system usage: ...\n");
  EXPECT_NEAR(p.redo_s, 0.25, 1e-6);
  EXPECT_EQ(p.wal_bytes, 0x200);
  EXPECT_LT(p.checkpoint_s, 0);  // no checkpoint lines: unknown, not an error
}

TEST(RecoveryPhasesTest, UnparsablePhasesAreNegative) {
  EXPECT_LT(ParseRecoveryPhases("").redo_s, 0);
  // No timestamp prefix (log_line_prefix without %m): the WAL is known, the times are not.
  RecoveryPhases p = ParseRecoveryPhases(
      "LOG:  redo starts at 0/100\nLOG:  redo done at 0/300 system usage\n"
      "LOG:  checkpoint starting: end-of-recovery immediate\nLOG:  checkpoint complete: x\n");
  EXPECT_LT(p.redo_s, 0);
  EXPECT_LT(p.checkpoint_s, 0);
  EXPECT_LT(p.ReplayBytesPerSecond(), 0);
  EXPECT_EQ(p.wal_bytes, 0x200);
  // Redo started but never finished (the log stops mid-recovery).
  p = ParseRecoveryPhases("2026-11-30 17:04:59.900 UTC [10] LOG:  redo starts at 0/5000028\n");
  EXPECT_LT(p.redo_s, 0);
  EXPECT_LT(p.wal_bytes, 0);
}

}  // namespace
}  // namespace pgbranch::pagefs_bench
