// PageCache: the LRU bound, and EraseFrom through the per-inode index (it must drop exactly the
// pages of one inode at or above a block, whatever else the cache holds).
#include "pageserver/pagefs/page_cache.h"

#include <string>

#include "gtest/gtest.h"

namespace pgbranch::pagefs {
namespace {

TEST(PageCacheTest, EraseFromDropsOnlyThatInodesPagesAtOrAboveTheBlock) {
  PageCache cache(1 << 20);
  for (uint64_t ino = 1; ino <= 3; ++ino) {
    for (uint64_t b = 0; b < 5; ++b) cache.Put(ino, b, std::string(10, static_cast<char>('a' + b)));
  }
  cache.EraseFrom(2, 3);
  EXPECT_EQ(cache.pages(), 13u);
  EXPECT_TRUE(cache.Contains(2, 2));
  EXPECT_FALSE(cache.Contains(2, 3));
  EXPECT_FALSE(cache.Contains(2, 4));
  EXPECT_TRUE(cache.Contains(1, 4));
  EXPECT_TRUE(cache.Contains(3, 3));
  cache.EraseFrom(2, 0);
  EXPECT_FALSE(cache.Contains(2, 0));
  EXPECT_EQ(cache.pages(), 10u);
  cache.EraseFrom(2, 0);  // nothing left of it: a no-op
  cache.EraseFrom(9, 0);  // never cached
  EXPECT_EQ(cache.pages(), 10u);
  // The inode's pages can come back after an erase.
  cache.Put(2, 1, "again");
  EXPECT_EQ(cache.Get(2, 1).value_or(""), "again");
}

TEST(PageCacheTest, EvictionKeepsTheIndexInStep) {
  PageCache cache(100);  // ten pages of 10 bytes
  for (uint64_t b = 0; b < 20; ++b) cache.Put(1, b, std::string(10, 'x'));
  EXPECT_EQ(cache.pages(), 10u);
  EXPECT_FALSE(cache.Contains(1, 9));  // the oldest went first
  EXPECT_TRUE(cache.Contains(1, 10));
  // An erase after eviction touches only what is still cached.
  cache.EraseFrom(1, 15);
  EXPECT_EQ(cache.pages(), 5u);
  EXPECT_TRUE(cache.Contains(1, 14));
  // Replacing a page keeps one entry for it.
  cache.Put(1, 10, std::string(10, 'y'));
  EXPECT_EQ(cache.pages(), 5u);
  cache.EraseFrom(1, 0);
  EXPECT_EQ(cache.pages(), 0u);
  cache.Put(1, 3, std::string(10, 'z'));
  EXPECT_EQ(cache.Get(1, 3).value_or(""), std::string(10, 'z'));
}

}  // namespace
}  // namespace pgbranch::pagefs
