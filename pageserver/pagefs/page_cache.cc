#include "pageserver/pagefs/page_cache.h"

#include <iterator>
#include <vector>

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
  if (it != map_.end()) RemoveLocked(it->second);
  bytes_ += page.size();
  lru_.push_front({{ino, block}, std::move(page)});
  map_[{ino, block}] = lru_.begin();
  blocks_[ino].insert(block);
  EvictLocked();
}

void PageCache::Erase(uint64_t ino, uint64_t block) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = map_.find({ino, block});
  if (it == map_.end()) return;
  RemoveLocked(it->second);
}

void PageCache::EraseFrom(uint64_t ino, uint64_t first_block) {
  std::lock_guard<std::mutex> lock(mu_);
  auto file = blocks_.find(ino);
  if (file == blocks_.end()) return;
  // Copied: RemoveLocked edits the set (and drops it once empty).
  std::vector<uint64_t> doomed(file->second.lower_bound(first_block), file->second.end());
  for (uint64_t block : doomed) RemoveLocked(map_.at({ino, block}));
}

size_t PageCache::pages() {
  std::lock_guard<std::mutex> lock(mu_);
  return map_.size();
}

void PageCache::RemoveLocked(std::list<Entry>::iterator it) {
  const Key key = it->key;
  bytes_ -= it->page.size();
  map_.erase(key);
  auto file = blocks_.find(key.ino);
  if (file != blocks_.end()) {
    file->second.erase(key.block);
    if (file->second.empty()) blocks_.erase(file);
  }
  if (pool_ != nullptr) pool_->Give(std::move(it->page));
  lru_.erase(it);
}

void PageCache::EvictLocked() {
  while (bytes_ > capacity_ && !lru_.empty()) RemoveLocked(std::prev(lru_.end()));
}

}  // namespace pgbranch::pagefs
