#pragma once

// 3.12: fuse_loop_cfg_* (the number of worker threads)
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <atomic>
#include <functional>

#include "pageserver/pagefs/pagefs.h"
#include "pageserver/pagefs/pagefs_metrics.h"
#include "pageserver/pagefs/startup_reads.h"
#include "pageserver/pagefs/volatile_files.h"
#include "pageserver/pagefs/wal_files.h"

namespace pgbranch::pagefs {

// The libfuse low-level operations table for a PageFs; the session's userdata must point to a
// FuseContext. Handlers convert between FUSE structures and PageFs calls, and check the caller's
// permissions first (access_check.h: the mount has no default_permissions).
struct FuseContext {
  PageFs* fs;
  PageFsMetrics* metrics;             // may be null
  double entry_timeout;               // seconds the kernel may cache names and attributes
  bool allow_writeback_cache = true;  // --no-writeback-cache clears it
  // Set at INIT on a read-write mount when the kernel accepts its writeback cache: write(2) lands
  // in the kernel's page cache and reaches pagefs as large WRITEs at writeback, fsync or close.
  // (Written once at INIT, read by every worker thread.)
  std::atomic<bool> writeback_cache{false};
  // Set by --wal-direct-io: PostgreSQL's WAL files (pg_wal/*) are opened with direct I/O (see
  // WalFiles). Off by default: it did not shorten a one-row commit end to end on the benchmark
  // machine, and WAL replay read each 8 KiB page through its own FUSE READ (4x slower redo).
  bool wal_direct_io = false;
  // Cleared by --no-wal-commit-at-write. A WRITE to a WAL file issues its commit at once instead
  // of buffering until the FSYNC: PostgreSQL writes WAL only to fdatasync it, and with the
  // writeback cache the kernel sends that WRITE first, then (often) a SETATTR with the file
  // times, then FSYNC -- the pageserver writes and syncs the commit meanwhile, and the FSYNC
  // waits for it (PageFs::Fsync with datasync leaves times-only changes for a later flush).
  bool wal_commit_at_write = true;
  // PostgreSQL's WAL files, tracked when wal_direct_io or wal_commit_at_write is set.
  WalFiles wal_files;
  bool TracksWal() const { return wal_direct_io || wal_commit_at_write; }
  // Files whose fsync does not wait for durability (--volatile-file); may be null.
  VolatileFiles* volatile_files = nullptr;
  // Runs once, on the worker thread that answers the first request after INIT, before it
  // answers: the kernel sends no other request before it has processed the INIT reply (which
  // sets the mount's read-ahead window), so this is where the window can be raised (main.cc,
  // KernelReadAhead). Set before the session loop starts; `after_init_pending` arms it.
  std::function<void()> after_init;
  // Set while a read-write mount with --prefetch-postgres learns what its start reads: every
  // READ but of a WAL segment is recorded (main.cc). May be null.
  StartupReads* startup_reads = nullptr;
  std::atomic<bool> after_init_pending{false};
};

const fuse_lowlevel_ops* PageFsOperations();

}  // namespace pgbranch::pagefs
