#include "compute/recovery_choice.h"

#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace pgbranch::compute {
namespace {

constexpr uint32_t kSeg = 1 << 20;

// A crash image on timeline `tli` whose last checkpoint's redo point is `redo`.
PgControlSummary Crashed(uint64_t redo, uint32_t tli = 1, int wal_level = 1) {
  PgControlSummary c;
  c.state = 6;  // in production
  c.wal_level = wal_level;
  c.redo_lsn = redo;
  c.timeline = tli;
  c.wal_segment_size = kSeg;
  return c;
}

// pg_wal as a map from file name to the first page's address (absent: unreadable/invalid).
struct FakeWal {
  std::map<std::string, std::optional<uint64_t>> files;
  std::vector<std::string> Names() const {
    std::vector<std::string> out;
    for (const auto& [name, _] : files) out.push_back(name);
    return out;
  }
  FirstPageAddress Reader() const {
    return [this](const std::string& file, uint32_t) -> std::optional<uint64_t> {
      auto it = files.find(file);
      return it == files.end() ? std::nullopt : it->second;
    };
  }
  // Segment `segno` of timeline 1, written in sequence (its first page says its own address).
  void Written(uint64_t segno, uint32_t tli = 1) {
    files[WalFileName(tli, segno, kSeg)] = segno * kSeg;
  }
};

TEST(RecoveryChoiceTest, NamesSegmentsAsPostgres) {
  EXPECT_EQ(WalFileName(1, 6, kSeg), "000000010000000000000006");
  // 4096 segments of 1 MB per "log id"; 256 of 16 MB.
  EXPECT_EQ(WalFileName(2, 4096 + 10, kSeg), "00000002000000010000000A");
  EXPECT_EQ(WalFileName(1, 257, 16u << 20), "000000010000000100000001");
}

TEST(RecoveryChoiceTest, LittleWalAfterTheCheckpointIsCrashRecovery) {
  FakeWal wal;
  for (uint64_t s = 6; s <= 7; ++s) wal.Written(s);
  const PgControlSummary c = Crashed(6 * kSeg + 0x1AC8);
  EXPECT_EQ(ChooseRecovery(c, wal.Names(), wal.Reader()), RecoveryMode::kCrash);
}

TEST(RecoveryChoiceTest, MuchWalAfterTheCheckpointIsPromotion) {
  FakeWal wal;
  for (uint64_t s = 6; s <= 9; ++s) wal.Written(s);
  const PgControlSummary c = Crashed(6 * kSeg + 0x1AC8);
  EXPECT_EQ(ChooseRecovery(c, wal.Names(), wal.Reader()), RecoveryMode::kPromote);
}

TEST(RecoveryChoiceTest, RecycledOrPreallocatedSegmentsDoNotCount) {
  FakeWal wal;
  wal.Written(6);
  wal.files[WalFileName(1, 8, kSeg)] = 2 * kSeg;      // an old segment renamed to a future name
  wal.files[WalFileName(1, 9, kSeg)] = std::nullopt;  // zero-filled: no valid page header
  const PgControlSummary c = Crashed(6 * kSeg + 0x1AC8);
  EXPECT_EQ(ChooseRecovery(c, wal.Names(), wal.Reader()), RecoveryMode::kCrash);
}

TEST(RecoveryChoiceTest, ALaterTimelineIsPromotion) {
  // A parent promoted after its last checkpoint: its WAL continues on timeline 2, which crash
  // recovery from the checkpoint's timeline 1 would not follow.
  FakeWal wal;
  wal.Written(6);
  wal.files["00000002.history"] = std::nullopt;
  EXPECT_EQ(ChooseRecovery(Crashed(6 * kSeg), wal.Names(), wal.Reader()), RecoveryMode::kPromote);
  // An older timeline's history (the checkpoint is on timeline 2 already) is no reason.
  EXPECT_EQ(ChooseRecovery(Crashed(6 * kSeg, 2), wal.Names(), wal.Reader()), RecoveryMode::kCrash);
}

TEST(RecoveryChoiceTest, CleanMinimalOrUnknownControlFiles) {
  FakeWal wal;
  for (uint64_t s = 6; s <= 9; ++s) wal.Written(s);
  PgControlSummary clean = Crashed(6 * kSeg);
  clean.state = PgControlSummary::kShutDown;
  EXPECT_EQ(ChooseRecovery(clean, wal.Names(), wal.Reader()), RecoveryMode::kNone);
  // Archive recovery refuses WAL of wal_level minimal, however much there is.
  EXPECT_EQ(ChooseRecovery(Crashed(6 * kSeg, 1, 0), wal.Names(), wal.Reader()),
            RecoveryMode::kCrash);
  PgControlSummary unknown = Crashed(6 * kSeg);
  unknown.wal_segment_size = 0;  // pg_control too short to say
  EXPECT_EQ(ChooseRecovery(unknown, wal.Names(), wal.Reader()), RecoveryMode::kCrash);
}

}  // namespace
}  // namespace pgbranch::compute
