#pragma once

// The PostgreSQL settings a compute runs with because its data directory is on pagefs rather
// than a local disk. compute/postgres_conf.cc writes them (an endpoint's parameters may override
// them); the benchmarks run PostgreSQL on pagefs with them too, so that their pagefs side is what
// a compute runs, while their local-disk side keeps PostgreSQL's defaults.
namespace pgbranch::compute {

struct StorageSetting {
  const char* name;
  const char* value;
};

inline constexpr StorageSetting kPagefsStorageSettings[] = {
    // Crash recovery (and a branch's replay from its last checkpoint) with full_page_writes on
    // reads almost no page from storage: the first change of a page after the checkpoint carries
    // its full image. PostgreSQL's recovery prefetch looks ahead of replay and posix_fadvise()s
    // the pages of later records whose full image is not yet replayed; on pagefs each is a FUSE
    // background read (a pageserver round trip), and the startup process blocks in posix_fadvise
    // once the kernel's FUSE background queue is full. Measured (pagefs-bench --only recovery:
    // pgbench -s 10, 42 MiB of WAL, cold mount): ~3,600 such 8 KiB reads (~1,350 Read RPCs)
    // where replay itself then read ~35, and cold redo 1.2-3.0 s -> 0.6-1.5 s (issue 11).
    {"recovery_prefetch", "off"},
    // A new WAL segment is created by writing its last byte instead of 16 MiB of zeros, as
    // PostgreSQL's documentation advises for copy-on-write filesystems. On pagefs the zeros are
    // stored as nothing anyway (a zero page of a new file is a hole, docs/pagefs.md), so they
    // cost only the kernel's write-back of 16 MiB through FUSE before the segment's fsync, which
    // the backend that needs the segment waits for. Reads of the unwritten part see zeros, as
    // after zero-filling: replay finds the end of WAL the same way.
    {"wal_init_zero", "off"},
};

}  // namespace pgbranch::compute
