// PostgresWalPlan: which WAL a new mount reads ahead for crash recovery (from the checkpoint's
// redo point to the end of the valid segments, capped), on a fake data directory.
#include "pageserver/pagefs/wal_prefetch.h"

#include <fcntl.h>

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "tests/unit/pagefs/fake_page_store.h"

namespace pgbranch::pagefs {
namespace {

constexpr uint64_t kPage = fs::kPageSize;
constexpr uint64_t kSeg = 1 << 20;  // the smallest segment PostgreSQL allows: 128 pages
constexpr uint32_t kTli = 1;

std::string Le(uint64_t v, size_t bytes) {
  std::string s;
  for (size_t i = 0; i < bytes; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}

class WalPlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs_ = std::make_unique<PageFs>(&store_, PageFsOptions{}, &clock_);
    ASSERT_TRUE(fs_->Mount().ok());
    fs::InodeAttr attr;
    ASSERT_EQ(fs_->Mkdir(fs::kRootIno, "pgdata", 0700, 0, 0, &attr, &pgdata_), 0);
    ASSERT_EQ(fs_->Mkdir(pgdata_, "global", 0700, 0, 0, &attr, &global_), 0);
    ASSERT_EQ(fs_->Mkdir(pgdata_, "pg_wal", 0700, 0, 0, &attr, &wal_), 0);
  }
  uint64_t File(uint64_t dir, const std::string& name, uint64_t size, const std::string& head) {
    fs::InodeAttr attr;
    uint64_t ino = 0;
    EXPECT_EQ(fs_->Create(dir, name, 0600, O_RDWR | O_CREAT | O_EXCL, 0, 0, &attr, &ino), 0);
    EXPECT_EQ(fs_->Write(ino, 0, head, false), 0);
    fs::InodeAttr in, out;
    in.size = size;
    EXPECT_EQ(fs_->SetAttr(ino, PageFs::kSetSize, in, &out), 0);
    EXPECT_EQ(fs_->Fsync(ino), 0);
    return ino;
  }
  void Control(uint64_t redo, uint32_t tli) {
    std::string c(kPage, '\0');
    c.replace(40, 8, Le(redo, 8));
    c.replace(48, 4, Le(tli, 4));
    File(global_, "pg_control", kPage, c);
  }
  // A segment whose first page says it starts at `pageaddr`.
  uint64_t Segment(uint64_t segno, uint64_t pageaddr) {
    std::string h = Le(0xD110, 2) + Le(2, 2) + Le(kTli, 4) + Le(pageaddr, 8);
    return File(wal_, WalSegmentName(kTli, segno, kSeg), kSeg, h);
  }

  FakePageStore store_;
  FakeClock clock_;
  std::unique_ptr<PageFs> fs_;
  uint64_t pgdata_ = 0, global_ = 0, wal_ = 0;
};

TEST(WalSegmentNameTest, AsPostgresNamesThem) {
  EXPECT_EQ(WalSegmentName(1, 0x123, 16 << 20), "000000010000000100000023");
  EXPECT_EQ(WalSegmentName(2, 5, 16 << 20), "000000020000000000000005");
  EXPECT_EQ(WalSegmentName(1, 0x1001, 1 << 20), "000000010000000100000001");
}

TEST_F(WalPlanTest, FromTheRedoPointToTheLastValidSegment) {
  Segment(1, 1 * kSeg);
  uint64_t s2 = Segment(2, 2 * kSeg);
  uint64_t s3 = Segment(3, 3 * kSeg);
  Segment(4, 0x7700000);  // recycled: an old segment renamed ahead
  Segment(5, 5 * kSeg);   // past a recycled one: never replayed
  Control(2 * kSeg + 3 * kPage + 100, kTli);
  std::vector<WalReadAhead> plan = PostgresWalPlan(fs_.get(), "pgdata", 64 << 20);
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].ino, s2);
  EXPECT_EQ(plan[0].from_block, 3u);
  EXPECT_EQ(plan[0].to_block, 128u);
  EXPECT_EQ(plan[1].ino, s3);
  EXPECT_EQ(plan[1].from_block, 0u);
  EXPECT_EQ(plan[1].to_block, 128u);
}

TEST_F(WalPlanTest, CappedAtMaxBytes) {
  uint64_t s2 = Segment(2, 2 * kSeg);
  uint64_t s3 = Segment(3, 3 * kSeg);
  Segment(4, 4 * kSeg);
  Control(2 * kSeg + 100 * kPage, kTli);
  std::vector<WalReadAhead> plan = PostgresWalPlan(fs_.get(), "pgdata", 40 * kPage);
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].ino, s2);
  EXPECT_EQ(plan[0].to_block - plan[0].from_block, 28u);
  EXPECT_EQ(plan[1].ino, s3);
  EXPECT_EQ(plan[1].to_block, 12u);
}

TEST_F(WalPlanTest, AFreshZeroSegmentEndsThePlan) {
  uint64_t s2 = Segment(2, 2 * kSeg);
  File(wal_, WalSegmentName(kTli, 3, kSeg), kSeg, "");  // created, never written
  Control(2 * kSeg, kTli);
  std::vector<WalReadAhead> plan = PostgresWalPlan(fs_.get(), "pgdata", 64 << 20);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].ino, s2);
  EXPECT_EQ(plan[0].from_block, 0u);
}

TEST_F(WalPlanTest, NothingWithoutAControlFileOrItsSegment) {
  Segment(2, 2 * kSeg);
  EXPECT_TRUE(PostgresWalPlan(fs_.get(), "pgdata", 64 << 20).empty());  // no pg_control
  Control(7 * kSeg, kTli);                                              // its segment is gone
  EXPECT_TRUE(PostgresWalPlan(fs_.get(), "pgdata", 64 << 20).empty());
  EXPECT_TRUE(PostgresWalPlan(fs_.get(), "absent", 64 << 20).empty());
}

// The plan's windows, read ahead, land in the cache: the replay's reads then cost no round trip.
TEST_F(WalPlanTest, ReadAheadOfThePlanCachesTheWal) {
  uint64_t s2 = Segment(2, 2 * kSeg);
  Control(2 * kSeg, kTli);
  fs_ = std::make_unique<PageFs>(&store_, PageFsOptions{}, &clock_);  // a new mount: cold
  ASSERT_TRUE(fs_->Mount().ok());
  std::vector<WalReadAhead> plan = PostgresWalPlan(fs_.get(), "pgdata", 64 << 20);
  ASSERT_EQ(plan.size(), 1u);
  ASSERT_EQ(plan[0].ino, s2);
  fs_->ReadAhead(plan[0].ino, plan[0].from_block, plan[0].to_block);
  for (int i = 0; i < 10000 && fs_->Stats().readahead_pages < 127; ++i) usleep(1000);
  EXPECT_GE(fs_->Stats().readahead_pages, 127u);  // page 0 was read by the plan itself
  uint64_t reads = store_.reads();
  std::string out;
  for (uint64_t b = 0; b < 128; ++b) ASSERT_EQ(fs_->Read(s2, b * kPage, kPage, &out), 0);
  EXPECT_EQ(store_.reads(), reads);
}

}  // namespace
}  // namespace pgbranch::pagefs
