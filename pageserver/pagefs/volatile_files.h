#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgbranch::pagefs {

// Files whose durability nobody depends on (--volatile-file PATH, relative to the mount's root):
// an fsync of one issues its data in order, like any fsync, and returns without waiting for the
// pageserver's acknowledgement.
//
// The compute agent names PostgreSQL's postmaster.pid: the postmaster fsyncs it at each of the
// ~6 updates of its start (PID, socket directory, listen address, shared memory key, "starting",
// "ready"), each a durable round at the pageserver on the start's path, yet nothing reads it
// after a crash but the stale-lock check, which the agent answers by removing it. Order is kept:
// its commit is issued where the fsync was, so whatever a crash leaves is still a prefix of the
// issued commits (invariant (I)); only the wait is gone.
//
// Inodes are matched by name as the kernel learns them (LOOKUP, CREATE, MKNOD, MKDIR, LINK,
// RENAME replies): a directory on the way to a path, then the file itself. An inode leaves the
// set when the kernel forgets it (its next use is a new LOOKUP). Thread-safe.
class VolatileFiles {
 public:
  // `paths`: "pgdata/postmaster.pid"; empty, "." and ".." parts are dropped.
  explicit VolatileFiles(const std::vector<std::string>& paths);

  bool empty() const { return paths_.empty(); }
  // Whether `name` is a part of one of the paths (a rename to it must be noted: the kernel
  // moves its entry without a LOOKUP).
  bool MayMatch(std::string_view name) const;
  // Records the entry `name` of directory `parent`, inode `ino` (a directory if `is_dir`).
  void Note(uint64_t parent, std::string_view name, uint64_t ino, bool is_dir);
  // Whether `ino` is one of the files.
  bool Contains(uint64_t ino) const;
  void Forget(uint64_t ino);

 private:
  std::vector<std::vector<std::string>> paths_;  // each a list of parts
  mutable std::mutex mu_;
  // Directory inode -> (path, parts matched so far), including the root (FUSE_ROOT_ID, none
  // matched); guarded by mu_. A directory on two paths' way holds both.
  std::multimap<uint64_t, std::pair<size_t, size_t>> dirs_;
  std::map<uint64_t, size_t> files_;  // inode -> path; guarded by mu_
};

}  // namespace pgbranch::pagefs
