#include "pageserver/pagefs/page_cache.h"

namespace pgbranch::pagefs {

std::optional<std::string> PageCache::Get(uint64_t ino, uint64_t block) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = map_.find({ino, block});
  if (it == map_.end()) {
    ++misses_;
    return std::nullopt;
  }
  ++hits_;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->page;
}

bool PageCache::Contains(uint64_t ino, uint64_t block) {
  std::lock_guard<std::mutex> lock(mu_);
  return map_.count({ino, block}) != 0;
}

void PageCache::Put(uint64_t ino, uint64_t block, std::string page) {
  if (capacity_ == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = map_.find({ino, block});
  if (it != map_.end()) {
    bytes_ -= it->second->page.size();
    lru_.erase(it->second);
    map_.erase(it);
  }
  bytes_ += page.size();
  lru_.push_front({{ino, block}, std::move(page)});
  map_[{ino, block}] = lru_.begin();
  EvictLocked();
}

void PageCache::Erase(uint64_t ino, uint64_t block) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = map_.find({ino, block});
  if (it == map_.end()) return;
  bytes_ -= it->second->page.size();
  lru_.erase(it->second);
  map_.erase(it);
}

void PageCache::EraseFrom(uint64_t ino, uint64_t first_block) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = lru_.begin(); it != lru_.end();) {
    if (it->key.ino == ino && it->key.block >= first_block) {
      bytes_ -= it->page.size();
      map_.erase(it->key);
      it = lru_.erase(it);
    } else {
      ++it;
    }
  }
}

void PageCache::EvictLocked() {
  while (bytes_ > capacity_ && !lru_.empty()) {
    bytes_ -= lru_.back().page.size();
    map_.erase(lru_.back().key);
    lru_.pop_back();
  }
}

}  // namespace pgbranch::pagefs
