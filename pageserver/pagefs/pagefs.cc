// pagefs: mount, attributes, data path (read, write, fsync, truncate) and statistics.
#include "pageserver/pagefs/pagefs.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/hop_trace.h"
#include "common/log.h"
#include "pageserver/pagefs/pagefs_inode.h"

namespace pgbranch::pagefs {
namespace {

// The options with the test hooks the environment sets (pagefs's flags do not offer them).
PageFsOptions WithTestHooks(PageFsOptions options) {
  if (const char* v = getenv("PGBRANCH_PAGEFS_TEST_PAUSE_DELETE_AFTER_BATCHES")) {
    options.test_pause_delete_after_batches = strtoull(v, nullptr, 10);
  }
  if (options.delete_batch_keys == 0) options.delete_batch_keys = 1;
  return options;
}

// The largest page-key listing the pageserver answers in one Scan.
constexpr uint32_t kMaxScanLimit = 10000;

}  // namespace

PageFs::PageFs(PageStore* store, const PageFsOptions& options, Clock* clock)
    : store_(store),
      options_(WithTestHooks(options)),
      clock_(clock ? clock : RealClock()),
      cache_(options.cache_bytes, &buffers_),
      reader_(store, {.max_in_flight = options.read_rpcs_in_flight}) {}

PageFs::~PageFs() {
  // First: a store callback that runs from now on finds the table closed and touches nothing of
  // this PageFs; one running is waited for. An fsync still waiting gets EIO: whether its commit
  // becomes durable, nobody will learn.
  for (FsyncReply& reply : replies_->Close()) reply(EIO);
  stop_ = true;
  {
    std::lock_guard<std::mutex> lock(flusher_mu_);
    flusher_stop_ = true;
  }
  flusher_cv_.notify_all();
  {
    // stop_ is set: taken and released so the read-ahead thread is either before its wait's
    // check (and sees stop_) or waiting (and gets the notification).
    std::lock_guard<std::mutex> lock(readahead_mu_);
  }
  readahead_cv_.notify_all();
  if (readahead_thread_.joinable()) readahead_thread_.join();
  if (flusher_.joinable()) flusher_.join();
  if (collector_.joinable()) collector_.join();
  if (prefetcher_.joinable()) prefetcher_.join();
}

void PageFs::StartBackgroundFlusher() {
  if (options_.read_only || flusher_.joinable()) return;
  collector_ = std::thread([this] {
    absl::Status s = CollectOrphans();
    if (!s.ok() && !absl::IsCancelled(s)) {
      LogWarning("Collecting orphaned inodes failed; the next mount retries",
                 {{"error", s.ToString()}});
    }
  });
  flusher_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(flusher_mu_);
    while (!flusher_stop_) {
      if (!issue_requested_ && issue_ahead_requested_.empty()) {
        flusher_cv_.wait_for(lock, std::chrono::milliseconds(50));
      }
      if (flusher_stop_) break;
      if (replies_->pending() > 0) {
        // The ack timeout of the fsyncs that reply later (no thread waits for them): fails them
        // once the oldest commit in flight is overdue, as a waiting fsync would fail.
        lock.unlock();
        store_->PoisonIfOverdue();
        lock.lock();
        if (flusher_stop_) break;
      }
      bool requested = issue_requested_;
      issue_requested_ = false;
      std::set<uint64_t> ahead;
      ahead.swap(issue_ahead_requested_);
      if (fenced_ || poisoned_) continue;
      if (!requested && dirty_bytes_ <= options_.dirty_limit_bytes / 2) {
        if (ahead.empty()) continue;
        lock.unlock();
        IssueInodes(ahead);
        lock.lock();
        continue;
      }
      lock.unlock();
      absl::Status s = IssueAll();
      if (!s.ok()) LogWarning("Background flush failed", {{"error", s.ToString()}});
      lock.lock();
    }
  });
}

int64_t PageFs::NowNs() { return clock_->NowMicros() * 1000; }

int PageFs::ErrnoFor(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk:
      return 0;
    case absl::StatusCode::kNotFound:
      return ENOENT;
    case absl::StatusCode::kFailedPrecondition:
      if (!fenced_.exchange(true)) {
        LogError("Fenced: another writer acquired this timeline; writes now fail with EIO",
                 {{"error", s.ToString()}});
      }
      return EIO;
    case absl::StatusCode::kResourceExhausted:
      return ENOSPC;
    case absl::StatusCode::kOutOfRange:
      return EINVAL;
    default:
      LogError("Pageserver call failed", {{"error", s.ToString()}});
      return EIO;
  }
}

absl::Status PageFs::Mount() {
  if (options_.read_only) {
    if (options_.lsn != 0) {
      lsn_ = options_.lsn;
    } else if (options_.at_micros != 0) {
      auto lsn = store_->LsnForTimestamp(options_.at_micros);
      if (!lsn.ok()) return lsn.status();
      lsn_ = *lsn;
    } else {
      auto head = store_->HeadLsn();
      if (!head.ok()) return head.status();
      lsn_ = *head;
    }
    if (lsn_ == 0) {
      return absl::FailedPreconditionError("the timeline is empty at that point: nothing to mount");
    }
  } else {
    auto gen = store_->AcquireWriter();
    if (!gen.ok()) return gen.status();
    generation_ = *gen;
  }
  auto r = store_->Read(lsn_, {fs::SuperblockKey(), fs::InodeKey(fs::kRootIno)});
  if (!r.ok()) return r.status();
  std::lock_guard<std::mutex> lock(mu_);
  auto root = std::make_shared<Inode>(fs::kRootIno);
  root->parent = fs::kRootIno;
  if ((*r)[0].has_value()) {
    auto sb = fs::DecodeSuperblock(*(*r)[0]);
    if (!sb.ok()) return sb.status();
    superblock_ = *sb;
    if (!(*r)[1].has_value())
      return absl::DataLossError("the superblock exists but the root does not");
    auto attr = fs::DecodeInodeAttr(*(*r)[1]);
    if (!attr.ok()) return attr.status();
    root->attr = *attr;
  } else {
    if (options_.read_only) {
      return absl::FailedPreconditionError(
          "the timeline holds no filesystem at that point (no superblock); mount it read-write "
          "to create one");
    }
    // A new, empty filesystem.
    int64_t now = NowNs();
    root->attr.mode = S_IFDIR | 0755;
    root->attr.uid = options_.mount_uid;
    root->attr.gid = options_.mount_gid;
    root->attr.nlink = 2;
    root->attr.atime_ns = root->attr.mtime_ns = root->attr.ctime_ns = now;
    superblock_ = fs::Superblock{};
    std::vector<PageMutation> muts = {
        {fs::InodeKey(fs::kRootIno), fs::EncodeInodeAttr(root->attr), false},
        {fs::SuperblockKey(), fs::EncodeSuperblock(superblock_), false}};
    auto lsn = store_->Commit(generation_, muts);
    if (!lsn.ok()) return lsn.status();
    LogInfo("Created an empty filesystem on the timeline");
    root->complete = true;  // no entries: every one it will have goes through dirents_
  }
  inodes_[fs::kRootIno] = root;
  if (!options_.read_only) {
    // The orphans a crash (or open unlinked files) left behind; CollectOrphans deletes them.
    fs::KeyRange range = fs::AllOrphansRange();
    std::string start = range.start;
    while (true) {
      auto page = store_->ScanKeys(lsn_, start, range.end, kMaxScanLimit);
      if (!page.ok()) return page.status();
      for (const auto& [key, value] : page->entries) {
        auto ino = fs::ParseOrphanKey(key);
        if (!ino.ok()) return absl::DataLossError("malformed orphan record key");
        mount_orphans_.push_back(*ino);
      }
      if (!page->more || page->entries.empty()) break;
      start = page->entries.back().first + std::string(1, '\0');
    }
    if (!mount_orphans_.empty()) {
      LogInfo("Found orphaned inodes to collect",
              {{"count", std::to_string(mount_orphans_.size())}});
    }
  }
  return absl::OkStatus();
}

std::shared_ptr<PageFs::Inode> PageFs::FindLocked(uint64_t ino) {
  auto it = inodes_.find(ino);
  return it == inodes_.end() ? nullptr : it->second;
}

std::shared_ptr<PageFs::Inode> PageFs::LoadLocked(uint64_t ino, int* err) {
  if (auto inode = FindLocked(ino)) return inode;
  auto r = store_->Read(lsn_, {fs::InodeKey(ino)});
  if (!r.ok()) {
    *err = ErrnoFor(r.status());
    return nullptr;
  }
  if (!(*r)[0].has_value()) {
    *err = ENOENT;
    return nullptr;
  }
  auto attr = fs::DecodeInodeAttr(*(*r)[0]);
  if (!attr.ok()) {
    LogError("Corrupt inode", {{"ino", std::to_string(ino)}, {"error", attr.status().ToString()}});
    *err = EIO;
    return nullptr;
  }
  auto inode = std::make_shared<Inode>(ino);
  inode->attr = *attr;
  inodes_[ino] = inode;
  return inode;
}

void PageFs::PreloadEntriesLocked(uint64_t dir, const std::vector<DirListing>& entries) {
  constexpr size_t kPreloadKeys = 1024;
  std::vector<uint64_t> load;
  for (const DirListing& e : entries) {
    if (e.name == "." || e.name == "..") continue;
    dirents_.emplace(std::make_pair(dir, e.name), e.ino);  // never replaces a known entry
    if (inodes_.count(e.ino) == 0) load.push_back(e.ino);
  }
  std::sort(load.begin(), load.end());
  load.erase(std::unique(load.begin(), load.end()), load.end());  // hard links
  for (size_t i = 0; i < load.size(); i += kPreloadKeys) {
    std::vector<std::string> keys;
    for (size_t j = i; j < std::min(load.size(), i + kPreloadKeys); ++j) {
      keys.push_back(fs::InodeKey(load[j]));
    }
    auto r = store_->Read(lsn_, keys);
    if (!r.ok()) return;  // lookups load what is missing, and report the error
    for (size_t j = 0; j < keys.size(); ++j) {
      if (!(*r)[j].has_value()) continue;
      auto attr = fs::DecodeInodeAttr(*(*r)[j]);
      if (!attr.ok() || inodes_.count(load[i + j]) != 0) continue;
      auto inode = std::make_shared<Inode>(load[i + j]);
      inode->attr = *attr;
      inodes_[load[i + j]] = inode;
    }
  }
}

int PageFs::CheckWritable() {
  if (options_.read_only) return EROFS;
  if (fenced_ || poisoned_) return EIO;
  return 0;
}

int PageFs::CommitFailed(const absl::Status& s) {
  if (!poisoned_.exchange(true)) {
    LogError("A commit failed or may be lost; every later write and fsync fails until remount",
             {{"error", s.ToString()}});
    return ErrnoFor(s);
  }
  // Already reported: every later operation repeats the first error (the store's poison).
  if (absl::IsFailedPrecondition(s)) fenced_ = true;
  return absl::IsResourceExhausted(s) ? ENOSPC : EIO;
}

int PageFs::Commit(const std::vector<PageMutation>& mutations, uint64_t* seq, Send send) {
  if (mutations.empty()) return 0;
  auto start = std::chrono::steady_clock::now();
  auto issued = send == Send::kSoon ? store_->CommitAsync(generation_, mutations)
                                    : store_->CommitInBackground(generation_, mutations);
  if (commit_observer_) {
    commit_observer_(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  if (!issued.ok()) return CommitFailed(issued.status());
  if (seq != nullptr) *seq = *issued;
  ++commits_;
  for (const auto& m : mutations) bytes_committed_ += m.key.size() + m.value.size();
  return 0;
}

int PageFs::WaitDurable(uint64_t seq) {
  absl::Status s = seq == 0 ? store_->Sync() : store_->WaitDurable(seq);
  return s.ok() ? 0 : CommitFailed(s);
}

int PageFs::GetAttr(uint64_t ino, fs::InodeAttr* attr) {
  std::shared_ptr<Inode> inode;
  {
    std::lock_guard<std::mutex> lock(mu_);
    int err = 0;
    inode = LoadLocked(ino, &err);
    if (!inode) return err;
  }
  std::lock_guard<std::mutex> lock(inode->mu);
  *attr = inode->attr;
  return 0;
}

void PageFs::Forget(uint64_t ino, uint64_t nlookup) {
  std::lock_guard<std::mutex> lock(mu_);
  auto inode = FindLocked(ino);
  if (!inode) return;
  inode->lookups = inode->lookups > nlookup ? inode->lookups - nlookup : 0;
}

absl::StatusOr<std::optional<std::string>> PageFs::FetchPage(uint64_t ino, uint64_t block) {
  if (auto page = cache_.Get(ino, block)) return std::optional<std::string>(std::move(*page));
  auto r = reader_.Read(lsn_, {fs::PageKey(ino, block)});
  if (!r.ok()) return r.status();
  return std::move((*r)[0]);
}

int PageFs::Read(uint64_t ino, uint64_t offset, size_t size, std::string* out, bool stream) {
  std::shared_ptr<Inode> inode;
  {
    std::lock_guard<std::mutex> lock(mu_);
    inode = FindLocked(ino);
    if (!inode) return EBADF;
  }
  out->clear();
  bool sequential = false;
  bool first_pass = true;
  std::vector<ReadaheadWindow> background;
  while (true) {
    std::vector<uint64_t> missing;
    std::vector<uint64_t> ahead;            // read-ahead: into the cache only
    std::vector<uint64_t> in_flight;        // being fetched by another read: waited for
    std::map<uint64_t, std::string> pages;  // block -> stored page (maybe short)
    uint64_t version, file_size;
    {
      std::lock_guard<std::mutex> lock(inode->mu);
      file_size = inode->attr.size;
      if (offset >= file_size || size == 0) return 0;
      size = std::min<uint64_t>(size, file_size - offset);
      version = inode->version;
      uint64_t first = fs::BlockOf(offset), last = fs::BlockOf(offset + size - 1);
      if (first_pass) {
        // The kernel's reads of a sequential scan may overlap in one page (4 KiB pages, 8 KiB
        // blocks): starting in the last block of the read before counts as sequential.
        uint64_t next = inode->next_read_block;
        sequential = next != 0 && (first == next || first + 1 == next);
        inode->next_read_block = last + 1;
      }
      for (uint64_t b = first; b <= last; ++b) {
        auto d = inode->dirty.find(b);
        auto f = inode->flushing.find(b);
        if (d != inode->dirty.end()) {
          pages[b] = d->second;
        } else if (f != inode->flushing.end()) {
          pages[b] = f->second;
        } else if (auto c = cache_.Get(ino, b)) {
          pages[b] = std::move(*c);
        } else if (inode->fetching.count(b) != 0) {
          in_flight.push_back(b);
        } else {
          missing.push_back(b);
        }
      }
      // The read-ahead is decided once per read (a pass after a wait or a race only fetches).
      if (first_pass) {
        PlanReadAheadLocked(inode.get(), first, last, sequential, stream, !missing.empty(), &ahead,
                            &background);
      }
      first_pass = false;
      // What this read fetches is in flight until it is cached (or dropped): a concurrent read
      // of the same pages waits for it instead of fetching them again.
      for (uint64_t b : missing) inode->fetching.insert(b);
      for (uint64_t b : ahead) inode->fetching.insert(b);
    }
    for (const ReadaheadWindow& w : background) QueueReadahead(w);
    background.clear();
    if (!missing.empty()) {
      // Fetch without holding the inode, then check nothing changed meanwhile.
      std::vector<std::string> keys;
      for (uint64_t b : missing) keys.push_back(fs::PageKey(ino, b));
      for (uint64_t b : ahead) keys.push_back(fs::PageKey(ino, b));
      auto r = reader_.Read(lsn_, std::move(keys));
      std::lock_guard<std::mutex> lock(inode->mu);
      EndFetchLocked(inode.get(), missing);
      EndFetchLocked(inode.get(), ahead);
      if (!r.ok()) return ErrnoFor(r.status());
      // The clean cache's invariant: it holds a page only as the store has it and as no write of
      // this mount has changed it since. Every write, flush and truncate bumps `version` under
      // the inode's lock, and the blocks were chosen (none dirty, none flushing) under it at
      // `version`: unchanged now means no newer version of any of them exists here, so caching
      // them is safe. Otherwise a write raced: nothing is cached, and the read starts over.
      if (inode->version != version) continue;
      for (size_t i = 0; i < missing.size(); ++i) {
        std::string page = (*r)[i].value_or("");
        if (page.size() > fs::kPageSize) return EIO;
        cache_.Put(ino, missing[i], page);
        pages[missing[i]] = std::move(page);
      }
      for (size_t i = 0; i < ahead.size(); ++i) {
        std::string page = (*r)[missing.size() + i].value_or("");
        if (page.size() > fs::kPageSize) return EIO;
        cache_.Put(ino, ahead[i], std::move(page));
      }
      readahead_fetched_ += ahead.size();
    }
    if (!in_flight.empty()) {
      // Pages another read (or the background read-ahead) is fetching: wait for that fetch to
      // end, then look again -- cached if it succeeded and nothing changed meanwhile; otherwise
      // (a write raced, the fetch failed) this read finds them dirty or missing and fetches them.
      std::unique_lock<std::mutex> lock(inode->mu);
      inode->fetch_done.wait(lock, [&] {
        for (uint64_t b : in_flight) {
          if (inode->fetching.count(b) != 0) return false;
        }
        return true;
      });
      ++in_flight_waits_;
      continue;
    }
    out->resize(size);
    uint64_t pos = offset;
    while (pos < offset + size) {
      uint64_t b = fs::BlockOf(pos);
      size_t in_page = pos % fs::kPageSize;
      size_t n = std::min<uint64_t>(fs::kPageSize - in_page, offset + size - pos);
      const std::string& page = pages[b];
      char* dst = out->data() + (pos - offset);
      size_t have = page.size() > in_page ? std::min(n, page.size() - in_page) : 0;
      if (have > 0) memcpy(dst, page.data() + in_page, have);
      if (have < n) memset(dst + have, 0, n - have);
      pos += n;
    }
    return 0;
  }
}

void PageFs::PlanReadAheadLocked(Inode* inode, uint64_t first, uint64_t last, bool sequential,
                                 bool stream, bool missed, std::vector<uint64_t>* ahead,
                                 std::vector<ReadaheadWindow>* background) {
  const uint64_t ra = options_.readahead_pages;
  const uint64_t file_pages = fs::PageCount(inode->attr.size);
  const uint64_t ino = inode->ino;
  if (!sequential || ra == 0) {
    inode->readahead_until = 0;  // a new sequential run starts its read-ahead afresh
    return;
  }
  if (missed) {
    // A miss before the read-ahead's end is a window still being fetched in the background:
    // only the missing pages then. Past it, the window comes with the missing pages.
    if (first >= inode->readahead_until) {
      uint64_t end = std::min<uint64_t>(file_pages, last + 1 + ra);
      for (uint64_t b = last + 1; b < end; ++b) {
        if (NeedsFetchLocked(*inode, b)) ahead->push_back(b);
      }
      inode->readahead_until = end;
    }
  } else if (inode->readahead_until < file_pages && last + 1 + ra / 2 >= inode->readahead_until) {
    // Within half a window of the read-ahead's end: the next window, in the background.
    uint64_t from = std::max(inode->readahead_until, last + 1);
    uint64_t to = std::min<uint64_t>(file_pages, from + ra);
    inode->readahead_until = to;
    background->push_back(ReadaheadWindow{ino, from, to});
  }
  if (!stream) return;
  // A stream (a WAL segment under replay): the background keeps windows queued up to
  // stream_readahead_pages past the reader, fetched one after the other. Whole windows (one Read
  // RPC of readahead_pages each), not the reader's advance in slices.
  uint64_t target = std::min<uint64_t>(file_pages, last + 1 + options_.stream_readahead_pages);
  while (inode->readahead_until < target &&
         (inode->readahead_until + ra <= target || target == file_pages)) {
    uint64_t from = std::max(inode->readahead_until, last + 1);
    uint64_t to = std::min<uint64_t>(file_pages, from + ra);
    inode->readahead_until = to;
    background->push_back(ReadaheadWindow{ino, from, to});
  }
}

bool PageFs::NeedsFetchLocked(const Inode& inode, uint64_t b) {
  return !inode.dirty.count(b) && !inode.flushing.count(b) && !inode.fetching.count(b) &&
         !cache_.Contains(inode.ino, b);
}

void PageFs::EndFetchLocked(Inode* inode, const std::vector<uint64_t>& blocks) {
  if (blocks.empty()) return;
  for (uint64_t b : blocks) inode->fetching.erase(b);
  inode->fetch_done.notify_all();
}

int PageFs::Write(uint64_t ino, uint64_t offset, std::string_view data, bool dsync, bool issue) {
  if (int err = CheckWritable()) return err;
  if (offset > fs::kMaxFileSize || data.size() > fs::kMaxFileSize - offset) return EFBIG;
  std::shared_ptr<Inode> inode;
  {
    std::lock_guard<std::mutex> lock(mu_);
    inode = FindLocked(ino);
    if (!inode) return EBADF;
  }
  bool over_limit, issue_ahead;
  uint64_t seq = 0;
  {
    std::unique_lock<std::mutex> lock(inode->mu);
    // The kernel's writeback may deliver data of a file whose last link and open are gone (and
    // whose pages were deleted): nothing may be stored for it any more.
    if (inode->deleted) return 0;
    uint64_t end = offset + data.size();
    uint64_t pos = offset;
    while (pos < end) {
      uint64_t b = fs::BlockOf(pos);
      size_t in_page = pos % fs::kPageSize;
      size_t n = std::min<uint64_t>(fs::kPageSize - in_page, end - pos);
      auto d = inode->dirty.find(b);
      if (d == inode->dirty.end() && in_page == 0 && n == fs::kPageSize) {
        std::string_view whole = data.substr(pos - offset, n);
        // A whole page of zeros where nothing was ever stored (no page of this block was issued,
        // none is buffered or in flight): a hole already, which the flush would skip anyway
        // (FlushInodeLocked). Nothing to buffer: the size below covers it, and a read finds no
        // page and answers zeros. (PostgreSQL zero-fills every new 16 MiB WAL segment, then
        // fsyncs it.)
        if (b >= inode->stored_blocks && inode->flushing.find(b) == inode->flushing.end() &&
            fs::TrimTrailingZeros(whole).empty()) {
          pos += n;
          continue;
        }
        // The write covers the whole page: it is the page (copied once, not zero-filled first).
        std::string page = buffers_.Take();
        page.assign(whole);
        inode->dirty.emplace(b, std::move(page));
        dirty_bytes_ += fs::kPageSize;
        pos += n;
        continue;
      }
      if (d == inode->dirty.end()) {
        std::string page = buffers_.Take();
        auto f = inode->flushing.find(b);
        if (f != inode->flushing.end()) {
          page.assign(f->second);  // newer than the store: its commit is in flight
        } else {
          page.assign(fs::kPageSize, '\0');
          if (b < fs::PageCount(inode->attr.size)) {
            auto base = FetchPage(ino, b);
            if (!base.ok()) return ErrnoFor(base.status());
            if (base->has_value()) {
              size_t keep =
                  std::min<size_t>((*base)->size(), fs::BytesInBlock(inode->attr.size, b));
              memcpy(page.data(), (*base)->data(), keep);
            }
          }
        }
        d = inode->dirty.emplace(b, std::move(page)).first;
        dirty_bytes_ += fs::kPageSize;
      }
      memcpy(d->second.data() + in_page, data.data() + (pos - offset), n);
      pos += n;
    }
    int64_t now = NowNs();
    if (end > inode->attr.size) {
      inode->attr.size = end;
      inode->attr_size_dirty = true;
    }
    inode->attr.mtime_ns = inode->attr.ctime_ns = now;
    inode->attr_dirty = true;
    MarkDirtyLocked(*inode);
    ++inode->version;
    over_limit = dirty_bytes_ > options_.dirty_limit_bytes;
    issue_ahead = options_.issue_ahead_bytes != 0 &&
                  inode->dirty.size() * fs::kPageSize >= options_.issue_ahead_bytes;
    // `issue`: the commit is on its way (and the pageserver at work) before the kernel's next
    // requests for this file -- the SETATTR and FSYNC of an fdatasync -- arrive.
    if (dsync || over_limit || issue) {
      if (int err = FlushInodeLocked(inode.get(), lock, &seq)) return err;
    }
  }
  // O_DSYNC: durable before it returns, with everything issued before it.
  if (dsync) {
    if (int err = WaitDurable(seq)) return err;
  }
  if (dirty_bytes_ > options_.dirty_limit_bytes) {
    absl::Status s = IssueAll();
    if (!s.ok()) return EIO;
  } else if (issue_ahead) {
    {
      std::lock_guard<std::mutex> lock(flusher_mu_);
      issue_ahead_requested_.insert(ino);
    }
    flusher_cv_.notify_all();
  }
  return 0;
}

void PageFs::IssueInodes(const std::set<uint64_t>& inos) {
  for (uint64_t ino : inos) {
    std::shared_ptr<Inode> inode;
    {
      std::lock_guard<std::mutex> lock(mu_);
      inode = FindLocked(ino);
    }
    if (!inode) continue;
    std::unique_lock<std::mutex> lock(inode->mu);
    // Issued already (an fsync, the dirty limit): nothing to stream.
    if (inode->dirty.size() * fs::kPageSize < options_.issue_ahead_bytes) continue;
    if (int err = FlushInodeLocked(inode.get(), lock)) {
      LogWarning("Background flush failed",
                 {{"ino", std::to_string(ino)}, {"error", strerror(err)}});
    }
  }
}

void PageFs::ReuseValues(std::vector<PageMutation>* batch) {
  for (PageMutation& m : *batch) buffers_.Give(std::move(m.value));
}

void PageFs::WaitForFlush(Inode* inode, std::unique_lock<std::mutex>& lock) {
  inode->flush_done.wait(lock, [inode] { return !inode->flush_running; });
}

int PageFs::FlushInodeLocked(Inode* inode, std::unique_lock<std::mutex>& lock, uint64_t* seq,
                             bool datasync) {
  WaitForFlush(inode, lock);
  if (inode->deleted) return 0;
  if (inode->flush_failed || fenced_ || poisoned_) return EIO;
  if (inode->dirty.empty() && !inode->attr_dirty) return 0;
  // fdatasync needs the data and what reading it back needs (the size), not the times (POSIX;
  // ext4 alike). They stay buffered, in the dirty set, for the file's next flush. (Otherwise an
  // fdatasync of a WAL file whose WRITE already issued its commit would wait for one more
  // durable round at the pageserver, only for the times the kernel sent in between.)
  if (datasync && inode->dirty.empty() && !inode->attr_size_dirty) return 0;
  // Take the buffered state; the commit runs without the lock. Clean now: out of the dirty set
  // (a write meanwhile puts it back).
  {
    std::lock_guard<std::mutex> l(dirty_set_mu_);
    dirty_set_.erase(inode->ino);
  }
  inode->flushing = std::move(inode->dirty);
  inode->dirty.clear();
  fs::InodeAttr attr = inode->attr;
  inode->attr_dirty = false;
  inode->attr_size_dirty = false;
  inode->flush_running = true;
  uint64_t pages = fs::PageCount(attr.size);
  // No other flush or truncate of the inode runs until this one ends (flush_running): the bound
  // holds for the whole build, and is raised below for what this flush issues.
  const uint64_t stored_blocks = inode->stored_blocks;
  uint64_t issued_blocks = 0;  // 1 + the highest block this flush puts or deletes
  lock.unlock();
  // Built and issued without the inode's lock: `flushing` does not change until this flush ends
  // (writes meanwhile go to `dirty` and only read it; truncates and other flushes of this inode
  // wait for flush_running). Large flushes go in several commits (each atomic; the fsync needs
  // them all), each issued as soon as it is built: the pageserver works on the first while the
  // next is built, and a small WAL commit queued behind one at the pageserver waits for 4 MiB,
  // not for all of it. The inode's attributes go in the last.
  int err = 0;
  std::vector<PageMutation> batch;
  size_t batch_bytes = 0;
  for (const auto& [block, page] : inode->flushing) {
    if (block >= pages) continue;  // beyond the end (truncated away)
    std::string_view stored = fs::TrimTrailingZeros(page);
    // A zero page where no page was ever issued: a hole already, nothing to delete.
    if (stored.empty() && block >= stored_blocks) continue;
    issued_blocks = std::max(issued_blocks, block + 1);
    std::string value = buffers_.Take();
    value.assign(stored);
    batch.push_back({fs::PageKey(inode->ino, block), std::move(value), stored.empty()});
    batch_bytes += stored.size() + 32;
    if (batch_bytes > (4u << 20)) {
      err = Commit(batch, seq, Send::kSoon);
      ReuseValues(&batch);
      if (err) break;
      batch.clear();
      batch_bytes = 0;
    }
  }
  if (!err) {
    batch.push_back({fs::InodeKey(inode->ino), fs::EncodeInodeAttr(attr), false});
    err = Commit(batch, seq, Send::kSoon);
    ReuseValues(&batch);
  }
  lock.lock();
  // Raised whether or not the commits went out: after a failure nothing more is written anyway
  // (the store is poisoned), and a bound too high only costs deletions of nothing.
  inode->stored_blocks = std::max(inode->stored_blocks, issued_blocks);
  inode->flush_running = false;
  inode->flush_done.notify_all();
  uint64_t flushed_bytes = inode->flushing.size() * fs::kPageSize;
  if (err) {
    // Keep the data (newer writes win) and report the failure from now on.
    for (auto& [block, page] : inode->flushing) {
      if (!inode->dirty.emplace(block, std::move(page)).second) dirty_bytes_ -= fs::kPageSize;
    }
    inode->flushing.clear();
    inode->attr_dirty = true;
    inode->attr_size_dirty = true;
    MarkDirtyLocked(*inode);
    inode->flush_failed = true;
    LogError("Flush failed; fsync reports EIO from now on", {{"ino", std::to_string(inode->ino)}});
    return err;
  }
  // The clean cache takes the flushed pages as committed (trailing zeros trimmed), moved rather
  // than copied; a mostly empty page is copied to its length so that it holds no spare capacity.
  for (auto& [block, page] : inode->flushing) {
    if (block >= pages) continue;
    size_t n = fs::TrimTrailingZeros(page).size();
    if (n < page.size() / 2) {
      std::string whole = std::move(page);
      page = std::string(whole.data(), n);
      buffers_.Give(std::move(whole));
    } else {
      page.resize(n);
    }
    cache_.Put(inode->ino, block, std::move(page));
  }
  dirty_bytes_ -= flushed_bytes;
  inode->flushing.clear();
  ++inode->version;
  return 0;
}

int PageFs::FlushForFsync(uint64_t ino, bool datasync, uint64_t* seq) {
  std::shared_ptr<Inode> inode;
  {
    std::lock_guard<std::mutex> lock(mu_);
    inode = FindLocked(ino);
    if (!inode) return EBADF;
  }
  std::unique_lock<std::mutex> lock(inode->mu);
  return FlushInodeLocked(inode.get(), lock, seq, datasync);
}

int PageFs::Fsync(uint64_t ino, FsyncReply reply, bool datasync) {
  if (options_.read_only) return 0;
  uint64_t seq = 0;
  if (int err = FlushForFsync(ino, datasync, &seq)) return err;
  if (seq == 0) {
    // Nothing of this file was buffered: wait only for the last in-flight commit that touched
    // its inode, not for every commit issued before this fsync (a run of unlinks, another file's
    // flush). Why that is enough:
    //  - every change of a file's data or attributes is a commit that writes its inode key (a
    //    flush's last commit carries the attributes; a truncate's, a SETATTR's, a create's, a
    //    link's, an unlink's and a rename's commits write the inode), and the page-only commits of
    //    a large flush or truncate are issued before that one;
    //  - a flush another thread started (the background flusher) was waited for by
    //    FlushInodeLocked (flush_running), so its commits are issued and counted; one that failed
    //    set flush_failed, which failed the fsync above;
    //  - acknowledgements come in order, so once that commit is durable every earlier one is,
    //    and whatever later crash state the pageserver can be left in is a prefix of the issued
    //    commits holding it: a state a real crash after this fsync could have left (a local disk
    //    may or may not have made the other, unrelated changes durable too).
    // fsyncdir still waits for everything issued (a name depends on the whole namespace).
    auto last = store_->LastPending({fs::InodeKey(ino)});
    if (!last.ok()) return CommitFailed(last.status());
    seq = *last;  // 0: its last commit is durable already
    HopTrace::Mark("fsync_clean", seq);
  }
  if (seq == 0) {
    AfterFsync(ino);
    return 0;
  }
  HopTrace::Mark("fsync_issued", seq);
  if (!reply) {
    // Its own flush (or its inode's last commit) and everything issued before it.
    if (int err = WaitDurable(seq)) return err;
    HopTrace::Mark("fsync_durable", seq);
    AfterFsync(ino);
    return 0;
  }
  // Reply later: the thread that learns the outcome replies, and this one returns to serve the
  // next request instead of blocking until the pageserver answered (and then being woken, only
  // to reply). The callback holds the reply table, not this PageFs, alive: it touches `this` only
  // inside Finish, which the destructor's Close stops (FsyncReplies' invariants).
  uint64_t id = replies_->Add(std::move(reply));
  if (id == 0) return EIO;  // being destroyed: nobody would wait for the outcome
  store_->OnDurable(seq, [replies = replies_, this, id, ino, seq](const absl::Status& s) {
    replies->Finish(id, [&](FsyncReply& r) {
      int err = s.ok() ? 0 : CommitFailed(s);
      HopTrace::Mark("fsync_durable", seq);
      r(err);
      if (err == 0) AfterFsync(ino);
    });
  });
  return kReplyLater;
}

void PageFs::AfterFsync(uint64_t ino) {
  // An fsync seldom comes alone: a checkpoint or initdb fsyncs file after file, each of which
  // would wait for a durable round of its own at the pageserver. Issue what the others hold
  // now, behind this one (it is durable already): the next fsync waits for one round holding
  // them all and those after it find nothing to wait for. Issuing buffered data early is always
  // allowed (a crash could have left it written), and it was issued at the dirty limit anyway.
  // The background flusher does it, so that this fsync is answered at once.
  // Not for this file alone: after an fdatasync it may hold its times, left for its next flush
  // (issuing them now would put one more durable round at the pageserver in front of the next
  // WAL commit).
  bool others;
  {
    std::lock_guard<std::mutex> lock(dirty_set_mu_);
    others = dirty_set_.size() > dirty_set_.count(ino);
  }
  if (others) {
    {
      std::lock_guard<std::mutex> lock(flusher_mu_);
      issue_requested_ = true;
    }
    flusher_cv_.notify_all();
  }
}

int PageFs::FsyncWithoutWait(uint64_t ino, bool datasync) {
  if (options_.read_only) return 0;
  uint64_t seq = 0;
  return FlushForFsync(ino, datasync, &seq);
}

int PageFs::FsyncDir(uint64_t ino) {
  // Namespace changes are issued in order before they return: wait for everything issued.
  if (options_.read_only) return 0;
  if (fenced_ || poisoned_) return EIO;
  return WaitDurable(0);
}

absl::Status PageFs::FlushAll() {
  absl::Status s = IssueAll(/*every_inode=*/true);
  if (options_.read_only) return s;
  if (int err = WaitDurable(0); err != 0 && s.ok()) {
    s = absl::InternalError(absl::StrCat("waiting for the pipelined commits: ", strerror(err)));
  }
  // Everything issued is durable or failed, so every fsync left to reply later has its outcome:
  // wait until their replies are sent, before the caller ends the FUSE session.
  replies_->WaitIdle();
  return s;
}

void PageFs::MarkDirtyLocked(const Inode& inode) {
  std::lock_guard<std::mutex> lock(dirty_set_mu_);
  dirty_set_.insert(inode.ino);
}

absl::Status PageFs::IssueAll(bool every_inode) {
  if (options_.read_only) return absl::OkStatus();
  std::set<uint64_t> marked;
  {
    std::lock_guard<std::mutex> lock(dirty_set_mu_);
    marked.swap(dirty_set_);
  }
  std::vector<std::shared_ptr<Inode>> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (every_inode) {
      for (auto& [ino, inode] : inodes_) all.push_back(inode);
    } else {
      for (uint64_t ino : marked) {
        if (auto inode = FindLocked(ino)) all.push_back(inode);
      }
    }
  }
  absl::Status result;
  for (auto& inode : all) {
    std::unique_lock<std::mutex> lock(inode->mu);
    if (inode->dirty.empty() && !inode->attr_dirty && !inode->flush_running) continue;
    if (int err = FlushInodeLocked(inode.get(), lock)) {
      result =
          absl::InternalError(absl::StrCat("flushing inode ", inode->ino, ": ", strerror(err)));
    }
  }
  return result;
}

int PageFs::TruncateLocked(Inode* inode, uint64_t size, std::unique_lock<std::mutex>& lock,
                           Times times) {
  if (size > fs::kMaxFileSize) return EFBIG;
  WaitForFlush(inode, lock);
  uint64_t old_size = inode->attr.size;
  uint64_t keep_pages = fs::PageCount(size);
  std::vector<PageMutation> muts;
  if (size < old_size) {
    // The new last page, zeroed past the new end; read before anything is deleted.
    if (size % fs::kPageSize != 0) {
      uint64_t b = size / fs::kPageSize;
      auto d = inode->dirty.find(b);
      std::string page;
      if (d != inode->dirty.end()) {
        page = d->second;
      } else {
        auto base = FetchPage(inode->ino, b);
        if (!base.ok()) return ErrnoFor(base.status());
        page = base->value_or("");
      }
      page.resize(fs::kPageSize, '\0');
      memset(page.data() + size % fs::kPageSize, 0, fs::kPageSize - size % fs::kPageSize);
      if (d != inode->dirty.end()) d->second = page;
      std::string_view stored = fs::TrimTrailingZeros(page);
      muts.push_back({fs::PageKey(inode->ino, b), std::string(stored), stored.empty()});
      inode->stored_blocks = std::max(inode->stored_blocks, b + 1);
      cache_.Erase(inode->ino, b);
    }
    // Drop buffered pages past the end.
    for (auto it = inode->dirty.lower_bound(keep_pages); it != inode->dirty.end();) {
      dirty_bytes_ -= fs::kPageSize;
      it = inode->dirty.erase(it);
    }
    cache_.EraseFrom(inode->ino, keep_pages);
    // A short tail goes in the commit that shrinks the size (by page number). A long one goes
    // first, in bounded commits listed by a keys-only scan (cost: the pages that exist, not the
    // size), and the size shrinks last, so no stored page ever lies past the size. Reads wait on
    // the inode's lock meanwhile.
    uint64_t doomed = fs::PageCount(old_size) - keep_pages;
    if (doomed <= options_.delete_batch_keys) {
      for (uint64_t b = keep_pages; b < fs::PageCount(old_size); ++b) {
        muts.push_back({fs::PageKey(inode->ino, b), "", true});
      }
    } else {
      ++inode->version;
      if (int err = DeletePages(inode->ino, keep_pages)) return err;
    }
  }
  int64_t now = NowNs();
  inode->attr.size = size;
  inode->attr.mtime_ns = times.mtime_ns != 0 ? times.mtime_ns : now;
  inode->attr.ctime_ns = times.ctime_ns != 0 ? times.ctime_ns : now;
  muts.push_back({fs::InodeKey(inode->ino), fs::EncodeInodeAttr(inode->attr), false});
  ++inode->version;
  if (int err = Commit(muts)) {
    // Not issued: the store keeps the old size (and maybe pages past the new one): so does the
    // inode, so a later delete by page number still covers every stored page. (A commit that
    // fails after it was issued poisons the store instead: nothing later is written.)
    inode->attr.size = std::max(old_size, size);
    return err;
  }
  inode->attr_dirty = false;
  inode->attr_size_dirty = false;
  return 0;
}

int PageFs::SetAttr(uint64_t ino, int flags, const fs::InodeAttr& in, fs::InodeAttr* out) {
  if (int err = CheckWritable()) return err;
  std::shared_ptr<Inode> inode;
  {
    std::lock_guard<std::mutex> lock(mu_);
    int err = 0;
    inode = LoadLocked(ino, &err);
    if (!inode) return err;
  }
  if ((flags & kSetSize) && in.size > fs::kMaxFileSize) return EFBIG;
  std::unique_lock<std::mutex> lock(inode->mu);
  if (inode->deleted) {
    // Its last link and open are gone and it was deleted from the store; the kernel may still
    // write back its times (writeback cache). Storing them would bring the inode back.
    *out = inode->attr;
    return 0;
  }
  if (flags & kSetMode) inode->attr.mode = (inode->attr.mode & S_IFMT) | (in.mode & 07777);
  if (flags & kSetUid) inode->attr.uid = in.uid;
  if (flags & kSetGid) inode->attr.gid = in.gid;
  if (flags & kSetAtime) inode->attr.atime_ns = in.atime_ns;
  if (flags & kSetMtime) inode->attr.mtime_ns = in.mtime_ns;
  inode->attr.ctime_ns = (flags & kSetCtime) ? in.ctime_ns : NowNs();
  if (flags & kSetSize) {
    if (!inode->attr.IsRegular()) return inode->attr.IsDirectory() ? EISDIR : EINVAL;
    Times times;
    if (flags & kSetMtime) times.mtime_ns = in.mtime_ns;
    if (flags & kSetCtime) times.ctime_ns = in.ctime_ns;
    if (int err = TruncateLocked(inode.get(), in.size, lock, times)) return err;
  } else if ((flags & ~(kSetAtime | kSetMtime | kSetCtime)) == 0 && inode->attr.IsRegular()) {
    // Only the times of a file: with the writeback cache the kernel sends its mtime and ctime
    // before every fsync of a written file. They go with the file's next flush (its fsync, the
    // dirty limit, unmount) like its data, instead of a commit of their own.
    inode->attr_dirty = true;
    MarkDirtyLocked(*inode);
  } else {
    std::vector<PageMutation> muts = {{fs::InodeKey(ino), fs::EncodeInodeAttr(inode->attr), false}};
    if (int err = Commit(muts)) return err;
  }
  *out = inode->attr;
  return 0;
}

int PageFs::Open(uint64_t ino, int flags) {
  std::shared_ptr<Inode> inode;
  {
    std::lock_guard<std::mutex> lock(mu_);
    int err = 0;
    inode = LoadLocked(ino, &err);
    if (!inode) return err;
    if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC)) {
      if (int e = CheckWritable()) return e;
    }
    ++inode->opens;
  }
  // Linux truncates on O_TRUNC whatever the access mode (and the kernel leaves it to us).
  if (flags & O_TRUNC) {
    std::unique_lock<std::mutex> lock(inode->mu);
    if (inode->attr.size != 0) return TruncateLocked(inode.get(), 0, lock, Times());
  }
  return 0;
}

int PageFs::Fallocate(uint64_t ino, int mode, uint64_t offset, uint64_t length) {
  if (int err = CheckWritable()) return err;
  if (mode != 0) return EOPNOTSUPP;  // PostgreSQL falls back to writing zeros
  if (offset > fs::kMaxFileSize || length > fs::kMaxFileSize - offset) return EFBIG;
  std::shared_ptr<Inode> inode;
  {
    std::lock_guard<std::mutex> lock(mu_);
    inode = FindLocked(ino);
    if (!inode) return EBADF;
  }
  std::lock_guard<std::mutex> lock(inode->mu);
  if (offset + length > inode->attr.size) {
    inode->attr.size = offset + length;
    inode->attr.ctime_ns = NowNs();
    inode->attr_dirty = true;
    inode->attr_size_dirty = true;
    MarkDirtyLocked(*inode);
    ++inode->version;
  }
  return 0;
}

int PageFs::StatFs(struct statvfs* st) {
  memset(st, 0, sizeof(*st));
  st->f_bsize = fs::kPageSize;
  st->f_frsize = fs::kPageSize;
  st->f_blocks = 1ull << 32;  // 32 TiB: the pageserver's disk is the real limit
  st->f_bfree = st->f_bavail = 1ull << 31;
  st->f_files = 1ull << 32;
  st->f_ffree = st->f_favail = 1ull << 31;
  st->f_namemax = fs::kMaxNameBytes;
  return 0;
}

PageFsStats PageFs::Stats() {
  PageFsStats s;
  s.commits = commits_;
  s.bytes_committed = bytes_committed_;
  s.cache_hits = cache_.hits();
  s.cache_misses = cache_.misses();
  s.readahead_pages = readahead_fetched_;
  s.prefetched_pages = prefetched_pages_;
  s.in_flight_waits = in_flight_waits_;
  ReadBatcher::Stats rs = reader_.stats();
  s.page_reads = rs.reads;
  s.page_read_rpcs = rs.rpcs;
  s.dirty_bytes = dirty_bytes_;
  s.pages_deleted = pages_deleted_;
  s.orphans_collected = orphans_collected_;
  s.fenced = fenced_;
  return s;
}

}  // namespace pgbranch::pagefs
