// PageBufferPool keeps page-sized buffers for reuse, bounded; the clean cache gives it the pages
// it drops.
#include "pageserver/pagefs/page_buffer_pool.h"

#include "gtest/gtest.h"
#include "pageserver/fs/fs_layout.h"
#include "pageserver/pagefs/page_cache.h"

namespace pgbranch::pagefs {
namespace {

TEST(PageBufferPoolTest, ReusesPageSizedBuffersOnly) {
  PageBufferPool pool(/*max_buffers=*/2);
  std::string a = pool.Take();
  EXPECT_TRUE(a.empty());
  EXPECT_GE(a.capacity(), fs::kPageSize);
  a.assign(fs::kPageSize, 'x');
  const char* data = a.data();
  pool.Give(std::move(a));
  EXPECT_EQ(pool.kept(), 1u);
  std::string b = pool.Take();
  EXPECT_EQ(b.data(), data);  // the same memory, emptied
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(pool.kept(), 0u);

  pool.Give(std::string("small"));                 // no room for a page: freed
  pool.Give(std::string(4 * fs::kPageSize, 'y'));  // far more than a page: freed
  EXPECT_EQ(pool.kept(), 0u);
  for (int i = 0; i < 3; ++i) pool.Give(std::string(fs::kPageSize, 'z'));
  EXPECT_EQ(pool.kept(), 2u);  // bounded
}

TEST(PageBufferPoolTest, TheCacheGivesTheBuffersItDrops) {
  PageBufferPool pool;
  PageCache cache(/*capacity_bytes=*/2 * fs::kPageSize, &pool);
  cache.Put(1, 0, std::string(fs::kPageSize, 'a'));
  cache.Put(1, 1, std::string(fs::kPageSize, 'b'));
  EXPECT_EQ(pool.kept(), 0u);
  cache.Put(1, 2, std::string(fs::kPageSize, 'c'));  // evicts block 0
  EXPECT_EQ(pool.kept(), 1u);
  cache.Put(1, 2, std::string(fs::kPageSize, 'd'));  // replaces block 2's page
  EXPECT_EQ(pool.kept(), 2u);
  cache.Erase(1, 1);
  EXPECT_EQ(pool.kept(), 3u);
  EXPECT_EQ(*cache.Get(1, 2), std::string(fs::kPageSize, 'd'));
}

}  // namespace
}  // namespace pgbranch::pagefs
