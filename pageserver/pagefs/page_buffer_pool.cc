#include "pageserver/pagefs/page_buffer_pool.h"

#include <utility>

#include "pageserver/fs/fs_layout.h"

namespace pgbranch::pagefs {

std::string PageBufferPool::Take() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!free_.empty()) {
      std::string s = std::move(free_.back());
      free_.pop_back();
      return s;
    }
  }
  std::string s;
  s.reserve(fs::kPageSize);
  return s;
}

void PageBufferPool::Give(std::string&& s) {
  if (s.capacity() < fs::kPageSize || s.capacity() > 2 * fs::kPageSize) return;
  s.clear();
  std::string keep = std::move(s);
  std::lock_guard<std::mutex> lock(mu_);
  if (free_.size() < max_) free_.push_back(std::move(keep));
}

size_t PageBufferPool::kept() {
  std::lock_guard<std::mutex> lock(mu_);
  return free_.size();
}

}  // namespace pgbranch::pagefs
