#pragma once

#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>

#include "pageserver/pagefs/page_buffer_pool.h"

namespace pgbranch::pagefs {

// A bounded LRU cache of clean file pages, keyed by (inode, block). Values are stored pages
// (possibly shorter than a full page: the tail is zeros). Thread-safe.
class PageCache {
 public:
  // `pool` (optional, outliving the cache): where the pages it drops go, for reuse.
  explicit PageCache(uint64_t capacity_bytes, PageBufferPool* pool = nullptr)
      : capacity_(capacity_bytes), pool_(pool) {}

  std::optional<std::string> Get(uint64_t ino, uint64_t block);
  // Whether the page is cached (counts neither a hit nor a miss, leaves the LRU order alone).
  bool Contains(uint64_t ino, uint64_t block);
  void Put(uint64_t ino, uint64_t block, std::string page);
  void Erase(uint64_t ino, uint64_t block);
  // Drops every page of `ino` at or above `first_block`. Costs the pages dropped (an index per
  // inode), not the size of the cache: every unlink and truncate calls it.
  void EraseFrom(uint64_t ino, uint64_t first_block);
  size_t pages();

  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }

 private:
  struct Key {
    uint64_t ino, block;
    bool operator==(const Key& o) const { return ino == o.ino && block == o.block; }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const { return k.ino * 0x9E3779B97F4A7C15ull ^ k.block; }
  };
  struct Entry {
    Key key;
    std::string page;
  };
  void EvictLocked();
  // Removes one entry from the list, the map and the per-inode index.
  void RemoveLocked(std::list<Entry>::iterator it);

  std::mutex mu_;
  uint64_t capacity_;
  PageBufferPool* const pool_;
  uint64_t bytes_ = 0;
  std::list<Entry> lru_;  // front: most recent
  std::unordered_map<Key, std::list<Entry>::iterator, KeyHash> map_;
  // ino -> its cached blocks: exactly the keys of map_, grouped (an inode without pages has no
  // entry).
  std::unordered_map<uint64_t, std::set<uint64_t>> blocks_;
  uint64_t hits_ = 0, misses_ = 0;
};

}  // namespace pgbranch::pagefs
