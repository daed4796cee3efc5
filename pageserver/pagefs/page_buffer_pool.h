#pragma once

#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

namespace pgbranch::pagefs {

// A bounded free list of page buffers: strings with room for one page (fs::kPageSize) and not
// much more. The write path reuses them -- the page a WRITE fills (PageFs::Write), its copy for
// the commit (FlushInodeLocked), the clean cache's pages once evicted -- instead of a malloc and
// a free of 8 KiB each, which glibc serves from its bins (not its per-thread cache), first
// consolidating its fast bins: about a fifth of pagefs's CPU under TPC-B. Thread-safe.
class PageBufferPool {
 public:
  explicit PageBufferPool(size_t max_buffers = 2048) : max_(max_buffers) {}

  // An empty string with capacity for at least a page: a kept buffer, else a new one.
  std::string Take();
  // Keeps `s` for a later Take when its capacity is a page's (up to twice that) and fewer than
  // max_buffers are kept; else frees it.
  void Give(std::string&& s);

  size_t kept();

 private:
  const size_t max_;
  std::mutex mu_;
  std::vector<std::string> free_;  // guarded by mu_
};

}  // namespace pgbranch::pagefs
