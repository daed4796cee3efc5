#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "pageserver/fs/fs_layout.h"
#include "pageserver/pagefs/pagefs.h"

namespace pgbranch::pagefs {

// One inode as pagefs holds it in memory.
struct PageFs::Inode {
  const uint64_t ino;
  explicit Inode(uint64_t i) : ino(i) {}

  std::mutex mu;
  // Guarded by mu.
  fs::InodeAttr attr;
  bool attr_dirty = false;
  // Of attr_dirty: something beyond the times (the size) differs from the store. Without it, the
  // buffered change is only the times, which an fdatasync leaves for a later flush.
  bool attr_size_dirty = false;
  std::map<uint64_t, std::string> dirty;  // block -> full page, not yet committed
  // Pages of the commit in flight (taken from `dirty`), readable while the commit runs without
  // the lock. One flush at a time: `flush_running`, waited for on `flush_done`.
  std::map<uint64_t, std::string> flushing;
  bool flush_running = false;
  std::condition_variable flush_done;
  bool flush_failed = false;  // sticky: every later fsync reports EIO
  // An upper bound on the blocks that may have a page key in the store or in an issued commit:
  // none at or past it was ever issued. An all-zero page there needs no mutation at all (its
  // deletion would delete nothing), so zero-filling a new file -- a new WAL segment is 2,048 zero
  // pages -- commits only its size. ~0 (unknown) for an inode loaded from the store: a crash in
  // the middle of a flush may have left pages past its size. 0 for one this mount created: its
  // inode number is new (the superblock's counter moves in the same commit as the create, so
  // no durable state holds a page of it). Raised by every flush and truncate that issues a page;
  // never lowered.
  uint64_t stored_blocks = ~uint64_t{0};
  // Bumped by every change of the data (write, flush, truncate): the epoch that keeps the clean
  // cache clean. A page fetched from the store (asked for or read ahead) is cached only if
  // `version` did not move between choosing the blocks and inserting them, both under `mu`.
  uint64_t version = 0;
  // Sequential-read detection for read-ahead: the block after the last read's end (0: none yet).
  uint64_t next_read_block = 0;
  // Read-ahead was fetched or queued up to this block (exclusive): a sequential reader that
  // comes within half a window of it queues the next window in the background (PageFs::Read).
  uint64_t readahead_until = 0;
  // Blocks a read or the background read-ahead is fetching from the store right now (chosen
  // under mu: none dirty, flushing or cached then). A read that needs one waits on `fetch_done`
  // for that fetch to end (PageFs::EndFetchLocked) and then looks again, instead of fetching it
  // a second time. Every fetcher removes its blocks when its fetch ends, whatever the outcome,
  // so a wait never outlives the fetch it waits for.
  std::set<uint64_t> fetching;
  std::condition_variable fetch_done;

  // Guarded by PageFs::mu_.
  uint64_t parent = 0;  // directories: the parent, for ".."
  // Directories: PageFs::dirents_ holds every entry (made by this mount, or listed whole once),
  // so a name it lacks does not exist and a lookup needs no round trip.
  bool complete = false;
  bool listing_tried = false;  // a whole listing was attempted (done, or too large)
  uint64_t lookups = 0;
  int opens = 0;
  // Its last link is gone and it was deleted from the store. Set holding both mu_ and mu.
  bool deleted = false;
};

}  // namespace pgbranch::pagefs
