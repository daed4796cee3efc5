#pragma once

#include <cstdint>
#include <mutex>
#include <string_view>
#include <unordered_set>

namespace pgbranch::pagefs {

// Which inodes are PostgreSQL WAL files: regular files named in a directory named "pg_wal", as
// the kernel learns them (LOOKUP, CREATE, MKNOD, LINK replies). pagefs opens these with FUSE
// direct I/O: PostgreSQL writes WAL and then fdatasyncs it, and through the writeback cache that
// is three round trips (the WRITE of the dirty page, a SETATTR with the file times, FSYNC);
// with direct I/O write(2) is the WRITE (pagefs keeps the times itself) and fdatasync the FSYNC.
//
// Only a performance hint: an inode wrongly in or out of the set is opened the other way, which
// is correct either way (pagefs applies a WRITE the same way whichever path sent it). An inode
// leaves the set when the kernel forgets it (its next use is a new LOOKUP). Thread-safe.
class WalFiles {
 public:
  // Records the entry `name` of directory `parent`, inode `ino` (a directory if `is_dir`).
  void Note(uint64_t parent, std::string_view name, uint64_t ino, bool is_dir);
  bool Contains(uint64_t ino) const;
  void Forget(uint64_t ino);

 private:
  mutable std::mutex mu_;
  std::unordered_set<uint64_t> wal_dirs_;   // guarded by mu_
  std::unordered_set<uint64_t> wal_files_;  // guarded by mu_
};

}  // namespace pgbranch::pagefs
