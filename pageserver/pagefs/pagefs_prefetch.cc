// pagefs: prefetching chosen pages of files into the clean cache, in the background; and the
// background windows of sequential read-ahead (PageFs::Read).
//
// Safety: a prefetched page enters the cache under the same rule as a page a read fetched
// (PageFs::Read): the blocks are chosen under the inode's lock at its `version` (none dirty,
// none flushing, none cached), read at the mount's LSN (at the head: after every change issued
// before the read, the store's read-your-writes), and cached only if, under the lock again,
// `version` has not moved and the inode was not deleted. A write, flush or truncate in between
// bumps `version`: the pages are dropped, never cached stale.
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "pageserver/pagefs/pagefs.h"
#include "pageserver/pagefs/pagefs_inode.h"

namespace pgbranch::pagefs {
namespace {

// Keys per Read RPC: small enough that a foreground read missing meanwhile does not wait long
// behind the prefetch at the pageserver, large enough to cost few round trips. The first RPC
// is smaller: a plan in the order of need (StartupReads) has its first pages wanted at once.
constexpr size_t kPrefetchKeysPerRpc = 256;
constexpr size_t kFirstPrefetchKeys = 32;

}  // namespace

PageFs::PrefetchResult PageFs::Prefetch(const std::vector<PrefetchFile>& files) {
  PrefetchResult result;
  // What one RPC carries: per inode, the blocks chosen and the version they were chosen at.
  struct Chosen {
    std::shared_ptr<Inode> inode;
    uint64_t version;
    std::vector<uint64_t> blocks;
  };
  size_t next = 0;   // the file
  uint64_t pos = 0;  // how far into it: a block number, or an index of its `blocks`
  while (next < files.size() && !stop_) {
    std::vector<Chosen> batch;
    std::vector<std::string> keys;
    const size_t rpc_keys = result.rpcs == 0 ? kFirstPrefetchKeys : kPrefetchKeysPerRpc;
    while (next < files.size() && keys.size() < rpc_keys) {
      const PrefetchFile& f = files[next];
      std::shared_ptr<Inode> inode;
      {
        std::lock_guard<std::mutex> lock(mu_);
        inode = FindLocked(f.ino);
      }
      Chosen c{inode, 0, {}};
      if (inode) {  // only inodes the caller has loaded (listed, looked up)
        std::lock_guard<std::mutex> lock(inode->mu);
        uint64_t end = pos;
        if (!inode->deleted && inode->attr.IsRegular()) {
          c.version = inode->version;
          const uint64_t pages = fs::PageCount(inode->attr.size);
          end = f.blocks.empty() ? std::min<uint64_t>(pages, f.max_blocks) : f.blocks.size();
          for (; pos < end && keys.size() < rpc_keys; ++pos) {
            const uint64_t b = f.blocks.empty() ? pos : f.blocks[pos];
            if (b >= pages || inode->dirty.count(b) || inode->flushing.count(b) ||
                cache_.Contains(f.ino, b)) {
              continue;
            }
            c.blocks.push_back(b);
            keys.push_back(fs::PageKey(f.ino, b));
          }
        }
        if (pos < end) {  // the RPC is full: the rest of this file goes in the next one
          batch.push_back(std::move(c));
          break;
        }
      }
      ++next;
      pos = 0;
      if (!c.blocks.empty()) batch.push_back(std::move(c));
    }
    if (keys.empty()) continue;
    ++result.rpcs;
    auto r = store_->Read(lsn_, keys);
    if (!r.ok()) {
      // Best effort: the reads that need these pages fetch them (and report any error).
      LogWarning("Prefetch read failed", {{"error", r.status().ToString()}});
      result.status = r.status();
      return result;
    }
    size_t i = 0;
    for (Chosen& c : batch) {
      std::lock_guard<std::mutex> lock(c.inode->mu);
      result.cached += CacheFetchedLocked(*c.inode, c.version, c.blocks, *r, i, &result.dropped);
      i += c.blocks.size();
    }
  }
  prefetched_pages_ += result.cached;
  return result;
}

void PageFs::StartPrefetch(std::function<std::vector<PrefetchFile>(bool* urgent)> plan) {
  if (prefetcher_.joinable()) return;
  prefetcher_ = std::thread([this, plan = std::move(plan)] {
    auto t0 = std::chrono::steady_clock::now();
    bool urgent = false;
    std::vector<PrefetchFile> files = plan(&urgent);
    // Otherwise the lowest CPU priority for this thread alone (Linux: a thread's nice value is
    // its own): on a busy machine the guessed reads it would save must not cost the start they
    // serve its CPU.
    if (!urgent) (void)setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 19);
    auto t1 = std::chrono::steady_clock::now();
    PrefetchResult r = Prefetch(files);
    auto ms = [](auto d) {
      return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
    };
    LogInfo("Prefetched", {{"files", std::to_string(files.size())},
                           {"plan", urgent ? "learned" : "guessed"},
                           {"pages", std::to_string(r.cached)},
                           {"dropped", std::to_string(r.dropped)},
                           {"rpcs", std::to_string(r.rpcs)},
                           {"plan_ms", ms(t1 - t0)},
                           {"read_ms", ms(std::chrono::steady_clock::now() - t1)}});
  });
}

void PageFs::ReadAhead(uint64_t ino, uint64_t from, uint64_t to) {
  const uint64_t window =
      options_.readahead_pages != 0 ? options_.readahead_pages : PageFsOptions().readahead_pages;
  for (uint64_t b = from; b < to; b += window) {
    QueueReadahead(ReadaheadWindow{ino, b, std::min(to, b + window)});
  }
}

void PageFs::QueueReadahead(const ReadaheadWindow& w) {
  std::lock_guard<std::mutex> lock(readahead_mu_);
  if (stop_) return;
  readahead_queue_.push_back(w);
  if (!readahead_thread_.joinable()) {
    readahead_thread_ = std::thread([this] {
      std::unique_lock<std::mutex> l(readahead_mu_);
      while (true) {
        readahead_cv_.wait(l, [this] { return stop_ || !readahead_queue_.empty(); });
        if (stop_) return;
        ReadaheadWindow next = readahead_queue_.front();
        readahead_queue_.pop_front();
        l.unlock();
        FetchReadahead(next);
        l.lock();
      }
    });
  }
  readahead_cv_.notify_one();
}

void PageFs::FetchReadahead(const ReadaheadWindow& w) {
  // The rule of Read's read-ahead: the blocks are chosen under the inode's lock at its `version`
  // (none dirty, none flushing, none cached) and cached only if, under the lock again, `version`
  // has not moved and the inode is not deleted. Best effort: a failed fetch is dropped (the
  // reader fetches the pages itself, and reports any error).
  std::shared_ptr<Inode> inode;
  {
    std::lock_guard<std::mutex> lock(mu_);
    inode = FindLocked(w.ino);
  }
  if (!inode) return;
  uint64_t version = 0;
  std::vector<uint64_t> blocks;
  std::vector<std::string> keys;
  {
    std::lock_guard<std::mutex> lock(inode->mu);
    if (inode->deleted) return;
    version = inode->version;
    uint64_t end = std::min<uint64_t>(w.to, fs::PageCount(inode->attr.size));
    for (uint64_t b = w.from; b < end; ++b) {
      if (!NeedsFetchLocked(*inode, b)) continue;
      blocks.push_back(b);
      keys.push_back(fs::PageKey(w.ino, b));
    }
    // In flight from now until the fetch ends: reads of these pages wait for it (Read).
    for (uint64_t b : blocks) inode->fetching.insert(b);
  }
  if (keys.empty()) return;
  auto r = reader_.Read(lsn_, std::move(keys));
  std::lock_guard<std::mutex> lock(inode->mu);
  if (r.ok()) {
    uint64_t dropped = 0;
    readahead_fetched_ += CacheFetchedLocked(*inode, version, blocks, *r, 0, &dropped);
  }
  EndFetchLocked(inode.get(), blocks);
}

uint64_t PageFs::CacheFetchedLocked(const Inode& inode, uint64_t version,
                                    const std::vector<uint64_t>& blocks,
                                    std::vector<std::optional<std::string>>& pages, size_t first,
                                    uint64_t* dropped) {
  if (inode.version != version || inode.deleted) {
    *dropped += blocks.size();
    return 0;
  }
  uint64_t cached = 0;
  for (size_t i = 0; i < blocks.size(); ++i) {
    std::optional<std::string>& page = pages[first + i];
    if (page.has_value() && page->size() > fs::kPageSize) continue;  // Read reports it
    if (cache_.Contains(inode.ino, blocks[i])) continue;             // a read cached it meanwhile
    cache_.Put(inode.ino, blocks[i], page.value_or(""));
    ++cached;
  }
  return cached;
}

}  // namespace pgbranch::pagefs
