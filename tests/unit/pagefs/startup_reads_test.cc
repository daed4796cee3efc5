// What a start read (startup_reads.h), its file form, and the file at the root of a PageFs
// (startup_read_file.h): recorded pages come back by path, in the order first read, and become
// the next mount's prefetch plan.
#include "pageserver/pagefs/startup_reads.h"

#include <fcntl.h>

#include "gtest/gtest.h"
#include "pageserver/pagefs/startup_read_file.h"
#include "tests/unit/pagefs/one_file_fixture.h"

namespace pgbranch::pagefs {
namespace {

using Ranges = std::vector<std::pair<uint64_t, uint64_t>>;
constexpr uint64_t kPage = fs::kPageSize;

TEST(StartupReadsTest, RecordsDistinctPagesInTheOrderFirstRead) {
  StartupReads r(100);
  r.Record(7, 0, 4 * kPage);           // blocks 0-3
  r.Record(9, 5 * kPage, 100);         // block 5
  r.Record(7, 2 * kPage, 3 * kPage);   // 2, 3 again, then 4
  r.Record(7, 10 * kPage + 1, kPage);  // straddles 10 and 11
  r.Record(7, 0, 0);                   // nothing
  std::vector<StartupReads::Recorded> got = r.Stop();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].ino, 7u);
  EXPECT_EQ(got[0].blocks, (std::vector<uint64_t>{0, 1, 2, 3, 4, 10, 11}));
  EXPECT_EQ(got[1].ino, 9u);
  EXPECT_EQ(got[1].blocks, (std::vector<uint64_t>{5}));
  r.Record(7, 50 * kPage, kPage);  // stopped: not recorded
  EXPECT_TRUE(r.Stop().empty());
}

TEST(StartupReadsTest, StopsRecordingWhenFull) {
  StartupReads r(3);
  r.Record(1, 0, 2 * kPage);
  r.Record(2, 0, 5 * kPage);
  r.Record(3, 0, kPage);
  std::vector<StartupReads::Recorded> got = r.Stop();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].blocks, (std::vector<uint64_t>{0}));
}

TEST(StartupReadsTest, RangesJoinConsecutiveBlocks) {
  EXPECT_EQ(StartupReads::Ranges({4, 5, 6, 0, 1, 9}), (Ranges{{4, 3}, {0, 2}, {9, 1}}));
  EXPECT_TRUE(StartupReads::Ranges({}).empty());
}

TEST(StartupReadsTest, EncodeDecodeRoundTrip) {
  std::vector<StartupReads::File> files = {{"pgdata/global/1262", {{0, 1}}},
                                           {"pgdata/base/5/1249", {{4, 16}, {0, 4}}}};
  std::string text = StartupReads::Encode(files);
  EXPECT_EQ(text, "pagefs startup reads v1\npgdata/global/1262 0+1\npgdata/base/5/1249 4+16 0+4\n");
  EXPECT_EQ(StartupReads::Decode(text), files);
}

TEST(StartupReadsTest, DecodeSkipsWhatDoesNotParse) {
  EXPECT_TRUE(StartupReads::Decode("").empty());
  EXPECT_TRUE(StartupReads::Decode("pagefs startup reads v2\npgdata/x 0+1\n").empty());
  std::vector<StartupReads::File> got = StartupReads::Decode(
      "pagefs startup reads v1\n"
      "/etc/passwd 0+1\n"
      "pgdata/../x 0+1\n"
      "pgdata/./x 0+1\n"
      "pgdata//x 0+1\n"
      "pgdata/x\n"
      "pgdata/x 0+0\n"
      "pgdata/x 1-2\n"
      "pgdata/x 18446744073709551615+2\n"
      "pgdata/ok 3+2\n");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].path, "pgdata/ok");
  EXPECT_EQ(got[0].ranges, (Ranges{{3, 2}}));
  // Encode leaves out what Decode would refuse.
  EXPECT_EQ(StartupReads::Encode({{"../x", {{0, 1}}}, {"pgdata/y", {}}}),
            "pagefs startup reads v1\n");
}

class StartupReadFileTest : public OneFileTest {
 protected:
  uint64_t Mkdir(uint64_t parent, const std::string& name) {
    fs::InodeAttr attr;
    uint64_t ino = 0;
    EXPECT_EQ(fs_->Mkdir(parent, name, 0700, 0, 0, &attr, &ino), 0);
    return ino;
  }
  uint64_t File(uint64_t parent, const std::string& name, uint64_t pages) {
    fs::InodeAttr attr;
    uint64_t ino = 0;
    EXPECT_EQ(fs_->Create(parent, name, 0600, O_RDWR | O_CREAT | O_EXCL, 0, 0, &attr, &ino), 0);
    for (uint64_t b = 0; b < pages; ++b) {
      EXPECT_EQ(fs_->Write(ino, b * kPage, PageOf(Fill(b)), false), 0);
    }
    EXPECT_EQ(fs_->Release(ino), 0);
    return ino;
  }
};

// A start's reads, named, saved, and planned again by the next mount; the WAL and the template
// databases are never named.
TEST_F(StartupReadFileTest, SavedReadsBecomeTheNextMountsPlan) {
  OneFileTest::Mount({});
  EXPECT_EQ(StartupReadFile::Load(fs_.get()), "");
  uint64_t pgdata = Mkdir(fs::kRootIno, "pgdata");
  uint64_t bases = Mkdir(pgdata, "base");
  uint64_t base = Mkdir(bases, "5");
  uint64_t catalog = File(base, "1259", 20);
  uint64_t template1 = File(Mkdir(bases, "1"), "1259", 2);
  uint64_t version = File(pgdata, "PG_VERSION", 1);
  uint64_t wal = File(Mkdir(pgdata, "pg_wal"), "000000010000000000000001", 4);
  std::vector<StartupReads::Recorded> recorded = {
      {version, {0}}, {wal, {0, 1}}, {template1, {0, 1}}, {catalog, {4, 5, 6, 0}}, {12345, {0}}};
  std::vector<StartupReads::File> named = StartupReadFile::Name(fs_.get(), "pgdata", recorded);
  ASSERT_EQ(named.size(), 2u);
  EXPECT_EQ(named[0].path, "pgdata/PG_VERSION");
  EXPECT_EQ(named[1].path, "pgdata/base/5/1259");
  EXPECT_EQ(named[1].ranges, (Ranges{{4, 3}, {0, 1}}));
  const std::string text = StartupReads::Encode(named);
  ASSERT_EQ(StartupReadFile::Save(fs_.get(), text), 0);
  // Saved again (replacing the first): the same file, no temporary left.
  ASSERT_EQ(StartupReadFile::Save(fs_.get(), text), 0);
  ASSERT_TRUE(fs_->FlushAll().ok());

  OneFileTest::Mount({});
  EXPECT_EQ(StartupReadFile::Load(fs_.get()), text);
  std::vector<DirListing> root;
  ASSERT_EQ(fs_->ReadDir(fs::kRootIno, &root), 0);
  int names = 0;
  for (const DirListing& e : root) names += e.name != "." && e.name != "..";
  EXPECT_EQ(names, 2);  // pgdata and the file
  std::vector<PageFs::PrefetchFile> plan =
      StartupReadFile::Plan(fs_.get(), StartupReads::Decode(text));
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].ino, version);
  EXPECT_EQ(plan[1].ino, catalog);
  EXPECT_EQ(plan[1].blocks, (std::vector<uint64_t>{4, 5, 6, 0}));
  EXPECT_EQ(fs_->Prefetch(plan).cached, 5u);
  uint64_t reads = store_.reads();
  std::string out;
  ASSERT_EQ(fs_->Read(catalog, 4 * kPage, 3 * kPage, &out), 0);
  EXPECT_EQ(out, PageOf(Fill(4)) + PageOf(Fill(5)) + PageOf(Fill(6)));
  EXPECT_EQ(store_.reads(), reads);
  // Keep writes only what differs: the same reads again leave the file as it is.
  uint64_t pages = 99;
  EXPECT_EQ(StartupReadFile::Keep(fs_.get(), "pgdata", recorded, &pages), 0);
  EXPECT_EQ(pages, 0u);
  EXPECT_EQ(StartupReadFile::Keep(fs_.get(), "pgdata", {{catalog, {1, 2}}}, &pages), 0);
  EXPECT_EQ(pages, 2u);
  EXPECT_EQ(StartupReadFile::Load(fs_.get()), "pagefs startup reads v1\npgdata/base/5/1259 1+2\n");
  // A path that no longer exists is skipped.
  EXPECT_TRUE(StartupReadFile::Plan(
                  fs_.get(), {{"pgdata/base/6/1259", {{0, 1}}}, {"pgdata/nothing/x", {{0, 1}}}})
                  .empty());
}

}  // namespace
}  // namespace pgbranch::pagefs
