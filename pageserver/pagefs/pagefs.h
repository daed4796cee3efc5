#pragma once

#include <sys/statvfs.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "common/clock.h"
#include "pageserver/fs/fs_layout.h"
#include "pageserver/pagefs/fsync_replies.h"
#include "pageserver/pagefs/page_buffer_pool.h"
#include "pageserver/pagefs/page_cache.h"
#include "pageserver/pagefs/page_store.h"
#include "pageserver/pagefs/read_batcher.h"

namespace pgbranch::pagefs {

struct PageFsOptions {
  bool read_only = false;
  uint64_t lsn = 0;                     // read-only: serve this LSN (0: resolve at mount)
  int64_t at_micros = 0;                // read-only: serve the newest LSN at or before this time
  uint64_t cache_bytes = 256ull << 20;  // clean page cache
  uint64_t dirty_limit_bytes = 48ull << 20;  // buffered writes above this force a flush
  // A file that buffers more than this (0: never) has it issued by the background flusher, woken
  // by the write that passes it: a bulk load (COPY, CREATE INDEX) streams to the pageserver while
  // PostgreSQL produces it, so the pageserver works meanwhile instead of idling until half the
  // dirty limit has piled up, and a WAL fsync queued behind the data issued before it waits for
  // a few MiB instead of for such a burst (docs/pagefs.md, "Where pgbench -i's time goes"). Per
  // file, not in all: the small files of DDL statements still go at their own fsync, so that no
  // WAL commit queues behind them.
  uint64_t issue_ahead_bytes = 1ull << 20;
  // Read-ahead: once a file is read sequentially (a read starts where the one before ended), a
  // read that misses the cache also fetches up to this many pages past its end, in the same Read
  // RPC, into the clean cache (0: off). The kernel's own read-ahead sends at most 128 KiB per
  // request; this makes a sequential scan (a WAL segment replayed by crash recovery, a sequential
  // scan of a table) one round trip per MiB instead of one per 128 KiB. A sequential reader that
  // comes within half a window of the read-ahead's end has the next window fetched on a
  // background thread, so it finds it cached instead of waiting for it.
  uint32_t readahead_pages = 128;
  // A file read as a stream (PageFs::Read's `stream`: the bridge says so of PostgreSQL's WAL
  // segments, which crash recovery replays front to back) and read sequentially has the
  // background keep windows of readahead_pages queued up to this many pages past the reader, so
  // that the kernel's READs (up to 1 MiB each, several at once with a large kernel read-ahead
  // window) find the pages cached or being fetched, and wait for that fetch instead of fetching
  // them again. 0: a stream is read ahead as any other file.
  uint32_t stream_readahead_pages = 1024;
  // Page reads that miss the cache go through a ReadBatcher: at most this many Read RPCs at once;
  // the misses of other FUSE threads that arrive meanwhile share the next RPC (the prefetches of
  // crash recovery come as concurrent one-page reads).
  uint32_t read_rpcs_in_flight = 2;
  uint32_t mount_uid = 0;  // owner of a new root directory
  uint32_t mount_gid = 0;
  // At most this many page deletions per commit when a file's pages are deleted (unlink of the
  // last link, shrinking truncate): a large delete is many bounded commits, never one huge one.
  uint32_t delete_batch_keys = 8192;
  // Test hook (0: off): after this many delete batches the deleting thread stops for good, so a
  // test can kill pagefs in the middle of a large delete. Also set by the environment variable
  // PGBRANCH_PAGEFS_TEST_PAUSE_DELETE_AFTER_BATCHES.
  uint64_t test_pause_delete_after_batches = 0;
};

struct PageFsStats {
  uint64_t commits = 0;
  uint64_t bytes_committed = 0;
  uint64_t cache_hits = 0;
  uint64_t cache_misses = 0;
  uint64_t readahead_pages = 0;  // pages fetched by read-ahead
  uint64_t page_reads = 0;       // reads of pages sent to the store (a miss with its read-ahead)
  uint64_t page_read_rpcs = 0;   // the Read RPCs that carried them
  uint64_t dirty_bytes = 0;
  uint64_t pages_deleted = 0;      // page deletions committed by unlink, truncate and collection
  uint64_t orphans_collected = 0;  // orphaned inodes whose deletion finished
  uint64_t prefetched_pages = 0;   // pages Prefetch put into the cache
  uint64_t in_flight_waits = 0;    // reads that waited for pages another read was fetching
  bool fenced = false;
};

// One directory entry as readdir returns it.
struct DirListing {
  std::string name;
  uint64_t ino;
  uint8_t dtype;  // DT_*
};

// The filesystem of one timeline, independent of FUSE: every method returns 0 or a positive
// errno, as the kernel wants. The FUSE bridge (fuse_bridge.cc) only converts.
//
// Semantics PostgreSQL relies on (DESIGN.md section 3):
//  - every change goes to the pageserver as pipelined commits (PageStore::CommitAsync): sent in
//    order without waiting, applied in the order issued, so every durable state is a prefix of
//    the issued changes (invariant (I): each LSN is a state a crash could have left);
//  - namespace changes (create, mkdir, symlink, link, unlink, rmdir, rename, truncate, chmod...)
//    are issued in order, each as one atomic batch, before they return; durable at the next
//    fsyncdir (which waits for everything issued before it), or fsync that waits for them (below).
//    They are issued
//    with PageStore::CommitInBackground: numbered and queued, sent by the store's writer thread,
//    so the FUSE thread waits for no network write (an fsync's own flush may be sent inline);
//  - a directory this mount knows whole (created here, or listed once) is listed from memory;
//  - file data is buffered per inode and issued by fsync/fdatasync (or O_DSYNC writes, or when
//    the dirty bytes pass the limit); fsync, fdatasync and O_DSYNC writes return 0 only once their
//    own flush and everything issued before it are durable; an fsync with nothing buffered for
//    its file waits only for the last in-flight commit that wrote the file's inode (and so for
//    everything before that one; see Fsync); FlushAll (unmount) waits for all;
//  - reads at the head see every change issued before them (the store's read-your-writes);
//  - a failed flush is reported by that fsync and every later one (no "fsyncgate"); a commit that
//    fails or may be lost after it was issued (the stream broke, the pageserver restarted, disk
//    full, fenced) poisons the store, and from then on every write, fsync and namespace change
//    gets EIO, like a fenced writer (another mount took the generation): PostgreSQL PANICs and
//    restarts on a fresh mount, from a durable prefix;
//  - deleting a file's pages (last unlink, shrinking truncate) costs time and memory in proportion
//    to the pages that exist, not to the file size, in commits of at most delete_batch_keys
//    deletions. Each intermediate LSN is consistent: a truncate deletes the pages past the new end
//    before it shrinks the size; the last unlink first removes the name and records the inode as an
//    orphan (fs_layout.h), then deletes its pages, then the inode and the record. Orphans left by
//    a crash are collected by the next read-write mount (StartBackgroundFlusher/CollectOrphans).
//
// Locking: mu_ guards the inode table, the directory-entry cache and namespace changes; each
// inode's own mutex guards its attributes and dirty pages. Order: mu_ before an inode's mutex,
// never the reverse. The store is thread-safe; commits need no lock of ours.
class PageFs {
 public:
  struct Inode;

  PageFs(PageStore* store, const PageFsOptions& options, Clock* clock = nullptr);
  // Runs every fsync reply still waiting with EIO (FlushAll waited for them, if it ran).
  // Invariant: no reply and no store callback of this PageFs runs once the destructor returns
  // (FsyncReplies::Close), although the store, which outlives it, may still acknowledge commits.
  ~PageFs();

  // Acquires the writer generation (read-write) or fixes the LSN (read-only), and loads the root,
  // creating an empty filesystem on a timeline that holds none (read-write only).
  absl::Status Mount();
  // Flushes every dirty inode and waits until everything issued is durable (at unmount), then
  // until every fsync reply left for later (Fsync) has run: call it before the FUSE session goes.
  absl::Status FlushAll();
  // Deletes the orphaned inodes (and their pages) that were recorded when this filesystem was
  // mounted: the leftovers of a crash in the middle of a delete, or of open unlinked files.
  // Read-write only. Runs in the background after StartBackgroundFlusher; tests call it directly.
  absl::Status CollectOrphans();

  int Lookup(uint64_t parent, const std::string& name, fs::InodeAttr* attr, uint64_t* ino);
  void Forget(uint64_t ino, uint64_t nlookup);
  int GetAttr(uint64_t ino, fs::InodeAttr* attr);

  // Which fields SetAttr changes.
  enum SetAttrFlags : int {
    kSetMode = 1,
    kSetUid = 2,
    kSetGid = 4,
    kSetSize = 8,
    kSetAtime = 16,
    kSetMtime = 32,
    kSetCtime = 64,  // the kernel's own ctime (writeback cache); otherwise ctime becomes now
  };
  int SetAttr(uint64_t ino, int flags, const fs::InodeAttr& in, fs::InodeAttr* out);

  // Creates a regular file and opens it (`flags` as open(2): O_EXCL, O_TRUNC...).
  int Create(uint64_t parent, const std::string& name, uint32_t mode, int flags, uint32_t uid,
             uint32_t gid, fs::InodeAttr* attr, uint64_t* ino);
  int Mknod(uint64_t parent, const std::string& name, uint32_t mode, uint64_t rdev, uint32_t uid,
            uint32_t gid, fs::InodeAttr* attr, uint64_t* ino);
  int Mkdir(uint64_t parent, const std::string& name, uint32_t mode, uint32_t uid, uint32_t gid,
            fs::InodeAttr* attr, uint64_t* ino);
  int Symlink(uint64_t parent, const std::string& name, const std::string& target, uint32_t uid,
              uint32_t gid, fs::InodeAttr* attr, uint64_t* ino);
  int Link(uint64_t ino, uint64_t new_parent, const std::string& new_name, fs::InodeAttr* attr);
  int Readlink(uint64_t ino, std::string* target);
  int Unlink(uint64_t parent, const std::string& name);
  int Rmdir(uint64_t parent, const std::string& name);
  int Rename(uint64_t parent, const std::string& name, uint64_t new_parent,
             const std::string& new_name, unsigned int flags);

  int Open(uint64_t ino, int flags);
  int Release(uint64_t ino);
  // Pages that another read or the read-ahead is fetching are waited for, not fetched again.
  // `stream`: the file is read front to back as a whole (a WAL segment), see
  // PageFsOptions::stream_readahead_pages.
  int Read(uint64_t ino, uint64_t offset, size_t size, std::string* out, bool stream = false);
  // `dsync`: durable before it returns (O_DSYNC). `issue`: its commit is issued before it returns
  // (not waited for), as for data about to be fsynced (a WAL file's WRITE).
  int Write(uint64_t ino, uint64_t offset, std::string_view data, bool dsync, bool issue = false);
  // An fsync's reply, run once with 0 or an errno (Fsync's reply later).
  using FsyncReply = std::function<void(int err)>;
  // Fsync's answer when it will run its `reply` instead (never a valid errno).
  static constexpr int kReplyLater = -1;
  // Makes the file's writes durable, with every commit before them. With nothing buffered for
  // the file: waits only for the last in-flight commit that wrote its inode (and every commit
  // before that one) -- none if none is in flight. `datasync` (fdatasync): a change of the file's
  // times alone is not committed (it goes with the file's next flush); the data and the size
  // always are.
  // Without `reply`: returns once they are durable (0), or the errno. With `reply`: returns 0 or
  // an errno if it can answer at once (nothing to wait for, an error before anything was issued,
  // a poisoned store), and then never runs `reply`; otherwise returns kReplyLater without
  // waiting, and `reply` runs exactly once -- with 0 once they are durable, with EIO (ENOSPC) if
  // a commit failed or the ack timeout passed (the store is then poisoned) or the PageFs is
  // destroyed first -- on whichever thread learns it (the pageserver's answer reader, the
  // background flusher seeing the ack timeout pass, the destructor; possibly this one, before
  // Fsync returns). So no FUSE thread is held while the commit crosses the pageserver. The ack
  // timeout of a reply later is checked by the background flusher (StartBackgroundFlusher).
  int Fsync(uint64_t ino, FsyncReply reply = nullptr, bool datasync = false);
  // A volatile file's fsync (volatile_files.h): its buffered data issued like Fsync's, in order,
  // and no wait for the pageserver's acknowledgement. 0 or the flush's errno.
  int FsyncWithoutWait(uint64_t ino, bool datasync);
  int FsyncDir(uint64_t ino);
  int Fallocate(uint64_t ino, int mode, uint64_t offset, uint64_t length);
  int ReadDir(uint64_t ino, std::vector<DirListing>* out);
  int StatFs(struct statvfs* st);

  // Called with the duration (seconds) of every commit to the pageserver (for metrics).
  void set_commit_observer(std::function<void(double)> observer) {
    commit_observer_ = std::move(observer);
  }
  // Starts the background threads: the flusher (once buffered data passes half the dirty limit it
  // is committed in the background, so writers stall only at the full limit; after an fsync it
  // issues whatever the other files buffer, see Fsync) and, on a
  // read-write mount, the collection of the orphans found at mount (CollectOrphans).
  void StartBackgroundFlusher();

  // Prefetching (pagefs_prefetch.cc): the first `max_blocks` pages of a file, or the pages
  // `blocks` (in that order) if given, into the clean cache.
  struct PrefetchFile {
    uint64_t ino;
    uint32_t max_blocks;
    std::vector<uint64_t> blocks = {};
  };
  struct PrefetchResult {
    uint64_t cached = 0;   // pages put into the cache
    uint64_t dropped = 0;  // pages read but not cached: their file changed meanwhile
    uint64_t rpcs = 0;
    absl::Status status;  // the first failed read (the prefetch then stops)
  };
  // Reads the pages of `files` not cached, dirty or being flushed, in few multi-key Read RPCs,
  // and caches them under the rule of Read (a file changed meanwhile is not cached). Only inodes
  // already loaded (listed or looked up) are prefetched. Best effort; stops early once the
  // destructor runs. Blocks: tests call it directly.
  PrefetchResult Prefetch(const std::vector<PrefetchFile>& files);
  // Runs `plan` and then Prefetch of what it returns on a background thread (the destructor
  // waits for it): the mount is usable at once, and a read that misses meanwhile fetches its page
  // itself. At most one per mount. The thread runs at the lowest CPU priority unless `plan` sets
  // *urgent (a plan of exactly the pages the start will read, wanted before the start reads them).
  void StartPrefetch(std::function<std::vector<PrefetchFile>(bool* urgent)> plan);

  // Queues the blocks [from, to) of file `ino` for the background read-ahead (the thread of
  // Read's windows, in windows of readahead_pages, under Read's cache rule): best effort, no
  // wait. Reads of those pages meanwhile wait for a window in flight, or fetch the pages of one
  // not started yet themselves (the window then skips them).
  void ReadAhead(uint64_t ino, uint64_t from, uint64_t to);

  bool read_only() const { return options_.read_only; }
  uint64_t lsn() const { return lsn_; }
  uint64_t generation() const { return generation_; }
  PageFsStats Stats();

 private:
  std::shared_ptr<Inode> FindLocked(uint64_t ino);
  // The inode, loaded from the store if needed; nullptr with *err set if it does not exist.
  std::shared_ptr<Inode> LoadLocked(uint64_t ino, int* err);
  // After a listing of `dir`: caches its entries and loads the inodes not loaded yet, in one Read
  // RPC per kPreloadKeys, so that the lookups that usually follow (PostgreSQL's fsync walk of the
  // data directory after a crash stats every file) cost no round trip. Adds only what is not
  // cached: the entries that namespace changes maintain stay authoritative. Best effort.
  void PreloadEntriesLocked(uint64_t dir, const std::vector<DirListing>& entries);
  // The child inode number of (parent, name), 0 if absent; negative errno on a store error.
  int64_t LookupEntryLocked(uint64_t parent, const std::string& name);
  // Lists a directory whole into dirents_ and marks it complete, unless it is too large. 0 or
  // an errno.
  int ListWholeDirLocked(Inode* dir);
  // Appends the stored entries of directory `ino` (as of the mount's LSN; at the head, with every
  // change issued before it) to *out in key order. E2BIG once more than `max_entries` were found
  // (0: no limit); otherwise 0 or an errno.
  int ScanDirLocked(uint64_t ino, size_t max_entries, std::vector<DirListing>* out);
  // A complete directory's entries from dirents_ (in name order, as the store lists them),
  // appended to *out: no round trip, and no wait for the pipelined commits that change it.
  // False (and *out as it was) if the inode of an entry is not loaded (its type is unknown).
  bool ListFromMemoryLocked(uint64_t ino, std::vector<DirListing>* out);
  // Loads the directory `parent_ino` and its entry `name`; 0 or an errno.
  int ResolveLocked(uint64_t parent_ino, const std::string& name, std::shared_ptr<Inode>* parent,
                    std::shared_ptr<Inode>* child);
  int CheckWritable();
  // Issues a batch (pipelined: in order, without waiting for durability); its sequence number in
  // *seq if not null. Maps a failure to errno (CommitFailed). Takes no lock. `kBackground` (the
  // namespace changes, whose durability nobody waits for before the next fsync/fsyncdir) lets the
  // store send it from its own thread (PageStore::CommitInBackground): the caller does not wait
  // for a network write. `kSoon` (a flush an fsync is about to wait for) may be sent at once on
  // this thread.
  enum class Send { kBackground, kSoon };
  int Commit(const std::vector<PageMutation>& mutations, uint64_t* seq = nullptr,
             Send send = Send::kBackground);
  // Waits until commit `seq` and everything issued before it are durable (seq 0: everything
  // issued so far). 0 or an errno (CommitFailed).
  int WaitDurable(uint64_t seq);
  // An fsync's flush of `ino`: its buffered data issued; `seq` its last commit (0: nothing was
  // buffered). 0 or the flush's errno (EBADF for an unknown inode).
  int FlushForFsync(uint64_t ino, bool datasync, uint64_t* seq);
  // After a successful fsync of `ino`: asks the background flusher to issue what the other files
  // buffer (see Fsync). Takes dirty_set_mu_, then flusher_mu_, never both.
  void AfterFsync(uint64_t ino);
  // A commit failed or may be lost (the store is poisoned): from now on every write, fsync and
  // namespace change fails with EIO. Returns the errno for `s` (notices fencing).
  int CommitFailed(const absl::Status& s);
  // Issues the flush of every dirty inode without waiting (background flusher, dirty limit, after
  // an fsync): those in dirty_set_, or with `every_inode` (unmount) every inode there is.
  absl::Status IssueAll(bool every_inode = false);
  // The background flusher's issue of the files that passed issue_ahead_bytes (each flushed if it
  // still buffers that much).
  void IssueInodes(const std::set<uint64_t>& inos);
  // Records that `inode` holds buffered pages or attributes (caller holds inode->mu).
  void MarkDirtyLocked(const Inode& inode);
  // Shared tail of create/mkdir/mknod/symlink.
  int MakeNodeLocked(uint64_t parent, const std::string& name, fs::InodeAttr attr,
                     fs::InodeAttr* out, uint64_t* out_ino);
  // Drops the buffered state of an inode whose last link and last open are gone and marks it
  // deleted (nothing is flushed for it any more). Caller holds mu_ and inode->mu.
  void MarkDeletedLocked(Inode* inode);
  // If a file of `size` bytes has at most delete_batch_keys pages, appends the deletion of its
  // inode and of every page it may have (by page number: no scan) and returns true: one commit
  // deletes a small file, atomically, as before. Otherwise appends nothing and returns false.
  bool AppendDeleteIfSmall(uint64_t ino, uint64_t size, std::vector<PageMutation>* muts);
  // Deletes the stored pages of `ino` from block `first_block` on: lists the pages that exist
  // (keys only) and deletes them in commits of at most delete_batch_keys. Stops early with
  // ECANCELED once the destructor set stop_. Takes no lock. 0 or an errno.
  int DeletePages(uint64_t ino, uint64_t first_block);
  // Deletes an orphaned inode of at most `size` bytes: its pages in batches, then (one commit)
  // the inode and its orphan record; a small one in a single commit. The caller registered `ino`
  // in reclaiming_; this unregisters it. 0 or an errno.
  int ReclaimInode(uint64_t ino, uint64_t size);
  // ReclaimInode for an inode whose last link and last open just went away, called holding no
  // lock. A failure is logged, not returned: the name is already gone, and the orphan record
  // makes the next mount finish the deletion.
  void ReclaimAfterUnlink(uint64_t ino, uint64_t size);
  // Issues the inode's buffered pages and attributes as pipelined commits (the sequence number of
  // the last in *seq, untouched if nothing was dirty); the caller waits for durability if it
  // must. Called holding the inode's lock, which it releases while the commits are issued.
  // `datasync`: issue nothing if only the times changed (Fsync).
  int FlushInodeLocked(Inode* inode, std::unique_lock<std::mutex>& lock, uint64_t* seq = nullptr,
                       bool datasync = false);
  // Waits (releasing the inode's lock) until no flush of the inode is in flight.
  static void WaitForFlush(Inode* inode, std::unique_lock<std::mutex>& lock);
  // Gives the values of `batch` back to buffers_ once Commit returned (the store has copied them:
  // it keeps only the keys).
  void ReuseValues(std::vector<PageMutation>* batch);
  // Truncates under the inode's lock; commits. The new mtime and ctime are `times` (the kernel's,
  // with the writeback cache) where given (non-zero), now otherwise.
  struct Times {
    int64_t mtime_ns = 0, ctime_ns = 0;
  };
  int TruncateLocked(Inode* inode, uint64_t size, std::unique_lock<std::mutex>& lock, Times times);
  // The stored page `block` of `inode` as of the mount's LSN (nullopt: a hole), via the cache.
  absl::StatusOr<std::optional<std::string>> FetchPage(uint64_t ino, uint64_t block);
  int64_t NowNs();
  int ErrnoFor(const absl::Status& s);
  void TouchParentLocked(Inode* parent, int nlink_delta, std::vector<PageMutation>* muts);

  PageStore* store_;
  const PageFsOptions options_;
  Clock* clock_;
  PageBufferPool buffers_;  // before cache_, which gives it the pages it drops
  PageCache cache_;
  ReadBatcher reader_;  // every page read from the store (not inodes, not listings)

  uint64_t generation_ = 0;
  uint64_t lsn_ = 0;  // 0 for read-write (the head)
  std::atomic<bool> fenced_{false};
  std::atomic<bool> poisoned_{false};  // a commit failed or may be lost: see CommitFailed
  std::atomic<uint64_t> dirty_bytes_{0};
  std::atomic<uint64_t> commits_{0}, bytes_committed_{0};
  std::atomic<uint64_t> readahead_fetched_{0};
  std::atomic<uint64_t> in_flight_waits_{0};

  std::function<void(double)> commit_observer_;
  // Fsync replies left for later. Shared with the store's OnDurable callbacks, which may outlive
  // this PageFs: closed by the destructor.
  const std::shared_ptr<FsyncReplies> replies_ = std::make_shared<FsyncReplies>();
  std::atomic<uint64_t> delete_batches_{0}, pages_deleted_{0}, orphans_collected_{0};
  // Orphan records found at mount (read-write), for CollectOrphans. Guarded by mu_.
  std::vector<uint64_t> mount_orphans_;
  // Inodes whose deletion (ReclaimInode) is running. Guarded by mu_.
  std::set<uint64_t> reclaiming_;
  std::atomic<bool> stop_{false};  // set by the destructor: background work ends
  std::thread collector_;
  std::thread prefetcher_;
  std::atomic<uint64_t> prefetched_pages_{0};
  // Asynchronous read-ahead (Read): windows [from, to) of sequentially read files, fetched in
  // order by one background thread, started at the first window.
  struct ReadaheadWindow {
    uint64_t ino, from, to;
  };
  void QueueReadahead(const ReadaheadWindow& w);
  // Read's read-ahead for a read of blocks [first, last] of `inode` (caller holds inode->mu):
  // the pages to fetch with the read's own misses (*ahead, if it `missed` past the read-ahead's
  // end) and the windows to queue for the background (*background). Resets the read-ahead of a
  // read that is not `sequential`; a `stream` is read ahead stream_readahead_pages far.
  void PlanReadAheadLocked(Inode* inode, uint64_t first, uint64_t last, bool sequential,
                           bool stream, bool missed, std::vector<uint64_t>* ahead,
                           std::vector<ReadaheadWindow>* background);
  // Whether block `b` of `inode` is to be fetched from the store: not dirty, flushing, being
  // fetched (Inode::fetching) or cached. Caller holds inode.mu.
  bool NeedsFetchLocked(const Inode& inode, uint64_t b);
  // The fetch of `blocks` (in inode->fetching) ended, cached or not: they leave `fetching` and
  // the reads waiting for them look again. Caller holds inode->mu.
  static void EndFetchLocked(Inode* inode, const std::vector<uint64_t>& blocks);
  void FetchReadahead(const ReadaheadWindow& w);
  // The clean cache's rule for pages fetched in the background (pagefs_prefetch.cc), under
  // inode.mu: pages[first + i] is cached for blocks[i], chosen at `version`, only if `version` has
  // not moved and the inode is not deleted (else all count in *dropped), and only if the page is
  // well-formed (Read reports it) and not cached meanwhile. Returns how many were cached.
  uint64_t CacheFetchedLocked(const Inode& inode, uint64_t version,
                              const std::vector<uint64_t>& blocks,
                              std::vector<std::optional<std::string>>& pages, size_t first,
                              uint64_t* dropped);
  std::mutex readahead_mu_;
  std::condition_variable readahead_cv_;
  std::deque<ReadaheadWindow> readahead_queue_;  // guarded by readahead_mu_
  std::thread readahead_thread_;                 // started under readahead_mu_
  std::mutex flusher_mu_;
  std::condition_variable flusher_cv_;
  bool flusher_stop_ = false;  // guarded by flusher_mu_
  // An fsync asks the flusher to issue every dirty inode now. Guarded by flusher_mu_.
  bool issue_requested_ = false;
  // Files that passed issue_ahead_bytes, for the flusher to issue. Guarded by flusher_mu_.
  std::set<uint64_t> issue_ahead_requested_;
  std::thread flusher_;

  // The inodes that hold buffered pages or attributes: one joins when it is dirtied and leaves
  // when a flush takes its buffered state (or IssueAll takes the set, and flushes each). A leaf
  // lock: taken holding an inode's mutex, nothing taken under it.
  std::mutex dirty_set_mu_;
  std::set<uint64_t> dirty_set_;  // guarded by dirty_set_mu_

  std::mutex mu_;
  fs::Superblock superblock_;                          // guarded by mu_
  std::map<uint64_t, std::shared_ptr<Inode>> inodes_;  // guarded by mu_
  // (parent, name) -> child ino, 0 for a known-absent name. Guarded by mu_.
  std::map<std::pair<uint64_t, std::string>, uint64_t> dirents_;
};

}  // namespace pgbranch::pagefs
