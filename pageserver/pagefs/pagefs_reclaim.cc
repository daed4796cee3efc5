// pagefs: deleting the pages of files, in bounded batches, and collecting orphaned inodes.
//
// Cost: listing uses keys-only scans from a cursor, so deleting a file costs time and memory in
// proportion to the pages that exist (a 1 TiB sparse file with five pages is one scan and one
// commit), never to its size.
//
// Crash consistency (invariant (I), DESIGN.md section 3): every commit below leaves a state a
// crash could have left.
//  - Shrinking truncate (TruncateLocked): the pages past the new end go first, in batches; the
//    size shrinks last. In between the file has its old size and part of its doomed tail reads
//    as zeros; no stored page ever lies past the size, where a later extension would expose it.
//  - Last unlink (Unlink, Rename over a target, Release of an unlinked file): one commit removes
//    the name, sets nlink 0 and writes the orphan record; from then on nothing reaches the inode.
//    Its pages go in batches, and one last commit deletes the inode and the record. A crash in
//    between leaves an unreachable inode with its record, which the next read-write mount
//    collects (CollectOrphans).
#include <chrono>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "pageserver/pagefs/pagefs.h"
#include "pageserver/pagefs/pagefs_inode.h"

namespace pgbranch::pagefs {

void PageFs::MarkDeletedLocked(Inode* inode) {
  inode->deleted = true;
  dirty_bytes_ -= inode->dirty.size() * fs::kPageSize;
  inode->dirty.clear();
  inode->attr_dirty = false;
  inode->attr_size_dirty = false;
}

bool PageFs::AppendDeleteIfSmall(uint64_t ino, uint64_t size, std::vector<PageMutation>* muts) {
  // No page lies at or past the size (truncate deletes them before it shrinks the size, and a
  // flush stores none), so the page numbers below the size name every page that may exist.
  uint64_t pages = fs::PageCount(size);
  if (pages > options_.delete_batch_keys) return false;
  muts->push_back({fs::InodeKey(ino), "", true});
  for (uint64_t b = 0; b < pages; ++b) muts->push_back({fs::PageKey(ino, b), "", true});
  return true;
}

int PageFs::DeletePages(uint64_t ino, uint64_t first_block) {
  const fs::KeyRange range = fs::PageRangeFrom(ino, first_block);
  std::string start = range.start;
  while (true) {
    if (stop_) return ECANCELED;
    auto page = store_->ScanKeys(lsn_, start, range.end, options_.delete_batch_keys);
    if (!page.ok()) return ErrnoFor(page.status());
    if (page->entries.empty()) return 0;
    // The next scan starts right after the last key listed: deleted keys are never listed again.
    start = page->entries.back().first + std::string(1, '\0');
    std::vector<PageMutation> muts;
    muts.reserve(page->entries.size());
    for (auto& [key, value] : page->entries) muts.push_back({std::move(key), "", true});
    if (int err = Commit(muts)) return err;
    pages_deleted_ += muts.size();
    uint64_t batches = ++delete_batches_;
    if (options_.test_pause_delete_after_batches != 0 &&
        batches == options_.test_pause_delete_after_batches) {
      LogWarning("Test hook: pausing the deletion of pages for good",
                 {{"ino", std::to_string(ino)}, {"batches", std::to_string(batches)}});
      while (!stop_) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      return ECANCELED;
    }
    if (!page->more) return 0;
  }
}

int PageFs::ReclaimInode(uint64_t ino, uint64_t size) {
  std::vector<PageMutation> last = {{fs::OrphanKey(ino), "", true}};
  int err = 0;
  if (!AppendDeleteIfSmall(ino, size, &last)) {
    err = DeletePages(ino, 0);
    last.push_back({fs::InodeKey(ino), "", true});
  }
  // Last: the inode and its orphan record, together.
  if (err == 0) err = Commit(last);
  if (err == 0) ++orphans_collected_;
  std::lock_guard<std::mutex> lock(mu_);
  reclaiming_.erase(ino);
  return err;
}

void PageFs::ReclaimAfterUnlink(uint64_t ino, uint64_t size) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    reclaiming_.insert(ino);
  }
  if (int err = ReclaimInode(ino, size)) {
    LogWarning("Could not delete the pages of an unlinked file; the next mount collects them",
               {{"ino", std::to_string(ino)}, {"error", strerror(err)}});
  }
}

absl::Status PageFs::CollectOrphans() {
  if (options_.read_only) return absl::OkStatus();
  std::vector<uint64_t> orphans;
  {
    std::lock_guard<std::mutex> lock(mu_);
    orphans.swap(mount_orphans_);
  }
  for (size_t i = 0; i < orphans.size(); ++i) {
    uint64_t ino = orphans[i];
    {
      std::lock_guard<std::mutex> lock(mu_);
      // Recorded before this mount, so no name and no open handle of ours reaches it; skip it
      // only if a deletion of it is somehow already running.
      if (!reclaiming_.insert(ino).second) continue;
    }
    if (int err = ReclaimInode(ino, fs::kMaxFileSize)) {  // its size is unknown: list its pages
      // Keep the rest for a later call (their records stay in the store either way).
      std::lock_guard<std::mutex> lock(mu_);
      mount_orphans_.insert(mount_orphans_.end(), orphans.begin() + i, orphans.end());
      if (err == ECANCELED) return absl::CancelledError("pagefs is shutting down");
      return absl::InternalError(
          absl::StrCat("collecting orphaned inode ", ino, ": ", strerror(err)));
    }
    LogInfo("Collected an orphaned inode", {{"ino", std::to_string(ino)}});
  }
  return absl::OkStatus();
}

}  // namespace pgbranch::pagefs
