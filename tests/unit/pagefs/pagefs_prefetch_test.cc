// Prefetch into the clean page cache (pagefs_prefetch.cc) and the plan of a PostgreSQL data
// directory's catalogs (catalog_prefetch.h): what is prefetched is served without a round trip,
// and a change racing the prefetch always wins over the pages it read.
#include <fcntl.h>

#include <algorithm>

#include "gtest/gtest.h"
#include "pageserver/pagefs/catalog_prefetch.h"
#include "pageserver/pagefs/pagefs.h"
#include "tests/unit/pagefs/one_file_fixture.h"

namespace pgbranch::pagefs {
namespace {

constexpr uint64_t kRoot = fs::kRootIno;
constexpr uint64_t kPage = fs::kPageSize;

class PageFsPrefetchTest : public OneFileTest {
 protected:
  static PageFsOptions NoReadAhead() {
    PageFsOptions options;
    options.readahead_pages = 0;  // every miss counted alone
    return options;
  }
  void SetUpFile(uint64_t pages) { OneFileTest::SetUpFile(pages, NoReadAhead()); }
  void Mount() { OneFileTest::Mount(NoReadAhead()); }
  void ExpectPage(uint64_t b, char expect = 0) { ExpectPages(b, 1, expect); }
};

TEST_F(PageFsPrefetchTest, CachesTheFirstPagesInOneRpc) {
  SetUpFile(20);
  uint64_t reads = store_.reads();
  PageFs::PrefetchResult r = fs_->Prefetch({{ino_, 8}});
  EXPECT_TRUE(r.status.ok());
  EXPECT_EQ(r.cached, 8u);
  EXPECT_EQ(r.rpcs, 1u);
  EXPECT_EQ(store_.reads(), reads + 1);
  for (uint64_t b = 0; b < 8; ++b) ExpectPage(b);
  EXPECT_EQ(store_.reads(), reads + 1);  // served from the cache
  ExpectPage(8);
  EXPECT_EQ(store_.reads(), reads + 2);
  EXPECT_EQ(fs_->Stats().prefetched_pages, 8u);
  // Again: everything wanted is cached, nothing is read.
  r = fs_->Prefetch({{ino_, 8}});
  EXPECT_EQ(r.rpcs, 0u);
  EXPECT_EQ(r.cached, 0u);
}

// Explicit blocks, in their order, across several RPCs (the first one small): every one cached,
// none past the end of the file, the others untouched.
TEST_F(PageFsPrefetchTest, CachesTheBlocksGivenAcrossRpcs) {
  SetUpFile(400);
  PageFs::PrefetchFile f{ino_, 0, {}};
  for (uint64_t b = 399; b >= 100; --b) f.blocks.push_back(b);
  f.blocks.push_back(7);
  f.blocks.push_back(5000);  // past the end
  PageFs::PrefetchResult r = fs_->Prefetch({f, {ino_, 2}});
  EXPECT_TRUE(r.status.ok());
  EXPECT_EQ(r.cached, 300u + 1 + 2);
  EXPECT_EQ(r.rpcs, 3u);  // 32, then 256, then the last 15
  uint64_t reads = store_.reads();
  for (uint64_t b : {0, 1, 7, 100, 250, 399}) ExpectPage(b);
  EXPECT_EQ(store_.reads(), reads);  // all from the cache
  ExpectPage(50);
  EXPECT_EQ(store_.reads(), reads + 1);
}

TEST_F(PageFsPrefetchTest, StopsAtTheEndOfTheFile) {
  SetUpFile(3);
  PageFs::PrefetchResult r = fs_->Prefetch({{ino_, 100}});
  EXPECT_EQ(r.cached, 3u);
}

TEST_F(PageFsPrefetchTest, SkipsDirtyPagesAndKeepsThem) {
  SetUpFile(8);
  ASSERT_EQ(fs_->Write(ino_, 2 * kPage, PageOf('D'), false), 0);
  PageFs::PrefetchResult r = fs_->Prefetch({{ino_, 8}});
  EXPECT_EQ(r.cached, 7u);
  ExpectPage(2, 'D');
  ASSERT_EQ(fs_->Fsync(ino_), 0);
  ExpectPage(2, 'D');
}

TEST_F(PageFsPrefetchTest, SkipsInodesNotLoaded) {
  SetUpFile(4);
  PageFs::PrefetchResult r = fs_->Prefetch({{ino_ + 1000, 8}});
  EXPECT_EQ(r.rpcs, 0u);
  EXPECT_EQ(r.cached, 0u);
}

// The stale-prefetch race: a write lands after the prefetch's RPC read its values and before
// they are cached. The write must win, in the buffer and, once flushed, in the cache.
TEST_F(PageFsPrefetchTest, AWriteDuringThePrefetchWins) {
  SetUpFile(8);
  store_.set_after_read([this] { ASSERT_EQ(fs_->Write(ino_, 3 * kPage, PageOf('Z'), false), 0); });
  PageFs::PrefetchResult r = fs_->Prefetch({{ino_, 8}});
  EXPECT_EQ(r.cached, 0u);
  EXPECT_EQ(r.dropped, 8u);
  ExpectPage(3, 'Z');
  ASSERT_EQ(fs_->Fsync(ino_), 0);
  ExpectPage(3, 'Z');
  ExpectPage(4);
}

TEST_F(PageFsPrefetchTest, AWriteAndFlushDuringThePrefetchWins) {
  SetUpFile(8);
  store_.set_after_read([this] {
    ASSERT_EQ(fs_->Write(ino_, 3 * kPage, PageOf('Z'), false), 0);
    ASSERT_EQ(fs_->Fsync(ino_), 0);  // committed and cached: only the cache holds it now
  });
  fs_->Prefetch({{ino_, 8}});
  ExpectPage(3, 'Z');
  // The prefetch again, now at rest: the cache still serves the write.
  fs_->Prefetch({{ino_, 8}});
  ExpectPage(3, 'Z');
  Mount();
  fs::InodeAttr a;
  ASSERT_EQ(fs_->Lookup(kRoot, "f", &a, &ino_), 0);
  fs_->Prefetch({{ino_, 8}});
  ExpectPage(3, 'Z');
}

TEST_F(PageFsPrefetchTest, ATruncateDuringThePrefetchWins) {
  SetUpFile(8);
  store_.set_after_read([this] {
    fs::InodeAttr in, out;
    in.size = 2 * kPage;
    ASSERT_EQ(fs_->SetAttr(ino_, PageFs::kSetSize, in, &out), 0);
    in.size = 8 * kPage;  // grow again: blocks 2.. are holes now, never the old pages
    ASSERT_EQ(fs_->SetAttr(ino_, PageFs::kSetSize, in, &out), 0);
  });
  fs_->Prefetch({{ino_, 8}});
  ExpectPage(1);
  std::string out;
  ASSERT_EQ(fs_->Read(ino_, 5 * kPage, kPage, &out), 0);
  EXPECT_EQ(out, std::string(kPage, '\0'));
}

TEST_F(PageFsPrefetchTest, AnUnlinkDuringThePrefetchCachesNothing) {
  SetUpFile(8);
  ASSERT_EQ(fs_->Release(ino_), 0);
  store_.set_after_read([this] { ASSERT_EQ(fs_->Unlink(kRoot, "f"), 0); });
  PageFs::PrefetchResult r = fs_->Prefetch({{ino_, 8}});
  EXPECT_EQ(r.cached, 0u);
}

// The destructor (an unmount) waits for a background prefetch, and stops it early.
TEST_F(PageFsPrefetchTest, DestroyedWithAPrefetchInFlight) {
  SetUpFile(8);
  std::vector<PageFs::PrefetchFile> files;
  for (int i = 0; i < 2000; ++i) files.push_back({ino_, 8});
  fs_->StartPrefetch([files](bool*) { return files; });
  fs_.reset();
  Mount();
  fs::InodeAttr a;
  ASSERT_EQ(fs_->Lookup(kRoot, "f", &a, &ino_), 0);
  ExpectPage(7);
}

TEST_F(PageFsPrefetchTest, InTheBackgroundServesTheSamePages) {
  SetUpFile(8);
  fs_->StartPrefetch([this](bool*) { return std::vector<PageFs::PrefetchFile>{{ino_, 8}}; });
  for (uint64_t b = 0; b < 8; ++b) ExpectPage(b);
}

// A data directory: the plan holds the catalogs of global/ and of every database but the
// templates, and nothing else.
TEST_F(PageFsPrefetchTest, PostgresCatalogPlan) {
  Mount();
  auto mkdir = [this](uint64_t parent, const std::string& name) {
    fs::InodeAttr attr;
    uint64_t ino = 0;
    EXPECT_EQ(fs_->Mkdir(parent, name, 0700, 0, 0, &attr, &ino), 0);
    return ino;
  };
  auto file = [this](uint64_t parent, const std::string& name) {
    fs::InodeAttr attr;
    uint64_t ino = 0;
    EXPECT_EQ(fs_->Create(parent, name, 0600, O_RDWR | O_CREAT | O_EXCL, 0, 0, &attr, &ino), 0);
    EXPECT_EQ(fs_->Write(ino, 0, PageOf('c'), false), 0);
    EXPECT_EQ(fs_->Release(ino), 0);
    return ino;
  };
  uint64_t pgdata = mkdir(kRoot, "pgdata");
  uint64_t global = mkdir(pgdata, "global");
  uint64_t base = mkdir(pgdata, "base");
  std::vector<uint64_t> want = {file(global, "1262"), file(global, "pg_filenode.map")};
  file(global, "pg_control");
  file(pgdata, "PG_VERSION");
  for (const char* db : {"1", "4", "5", "16385"}) {
    uint64_t d = mkdir(base, db);
    uint64_t catalog = file(d, "1259");
    uint64_t map = file(d, "pg_filenode.map");
    file(d, "1259_fsm");
    file(d, "16400");
    file(d, "PG_VERSION");
    if (std::string(db) == "5" || std::string(db) == "16385") {
      want.push_back(catalog);
      want.push_back(map);
    }
  }
  mkdir(base, "pgsql_tmp");
  ASSERT_EQ(fs_->FlushAll().ok(), true);
  Mount();
  std::vector<PageFs::PrefetchFile> plan = PostgresCatalogPlan(fs_.get(), "pgdata", 8);
  std::vector<uint64_t> got;
  for (const auto& f : plan) {
    EXPECT_EQ(f.max_blocks, 8u);
    got.push_back(f.ino);
  }
  std::sort(got.begin(), got.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);
  PageFs::PrefetchResult r = fs_->Prefetch(plan);
  EXPECT_EQ(r.cached, want.size());
  // No data directory (a new branch before initdb): an empty plan.
  EXPECT_TRUE(PostgresCatalogPlan(fs_.get(), "nothing/here", 8).empty());
  EXPECT_TRUE(PostgresCatalogPlan(fs_.get(), "pgdata/PG_VERSION", 8).empty());
}

}  // namespace
}  // namespace pgbranch::pagefs
