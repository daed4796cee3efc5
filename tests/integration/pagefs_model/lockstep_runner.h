#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

// A model test for pagefs: the same random file operations applied to a pagefs mount and to a
// directory on a local filesystem, in lockstep, must give the same results (return values, errno,
// bytes read, stat fields, directory listings). The local filesystem is the model.
namespace pgbranch::pagefs_model {

// What one system call returned on one side.
struct OpResult {
  int64_t ret = 0;
  int err = 0;       // errno when ret < 0
  std::string data;  // bytes read, a readlink target, a listing, stat fields

  bool operator==(const OpResult& o) const {
    return ret == o.ret && err == o.err && data == o.data;
  }
  std::string ToString() const;
};

class LockstepRunner {
 public:
  struct Options {
    uint64_t seed = 1;
    // Crash mode: more fsyncs, and the content of every file at its last successful fsync is
    // remembered (until the file is modified again) for CompareAfterCrash.
    bool crash_mode = false;
    // Whether open(O_RDONLY | O_TRUNC) is among the operations.
    bool rdonly_trunc = true;
    // Whether fstat through a handle compares a directory's link count (a directory removed by
    // a rename over it has none left).
    bool removed_dir_nlink = true;
  };

  // `pagefs_root` and `local_root` are existing, empty directories.
  LockstepRunner(std::string pagefs_root, std::string local_root, Options options);
  ~LockstepRunner();

  // Runs `count` random operations. False at the first divergence (see failure()).
  bool Run(int count);
  // Opens random paths until the maximum number of handles is open, then creates (and writes)
  // three files with new names.
  bool FillHandles();
  // fsync of every open handle (compared).
  bool FsyncAll();
  // Closes every open handle on both sides (compared).
  bool CloseAll();
  // Closes the pagefs side's descriptors after the pagefs process died (results ignored), and the
  // local ones.
  void AbandonHandles();

  // Compares the whole trees: listings, types, modes, link counts, sizes, symlink targets and
  // file contents. False (see failure()) at the first difference.
  bool CompareTrees();
  // After pagefs was killed and remounted: the namespace (names, types, modes, link counts,
  // symlink targets) must match exactly, since the caller fsynced a directory before the kill
  // (pagefs issues every namespace change in order before it returns, and an fsyncdir waits for
  // all of them); a file whose data was fsynced and not modified afterwards must have exactly the
  // fsynced content. `checked_files` counts those.
  bool CompareAfterCrash(int* checked_files);

  const std::string& failure() const { return failure_; }
  // The last `n` lines of the operation log.
  std::string LogTail(size_t n) const;
  int fsyncs() const { return fsyncs_; }
  // "op succeeded/ran" for each kind of operation.
  std::string Stats() const;

 private:
  struct Handle {
    int fd[2] = {-1, -1};
    std::string path;
    int flags = 0;
    bool is_dir = false;
  };
  // A file's data as of its last fsync, valid while `clean`.
  struct Synced {
    bool clean = false;
    std::string content;
  };

  // One operation on both sides: `fn(side)` runs it on side 0 (pagefs) or 1 (local).
  template <typename Fn>
  bool Both(const std::string& what, Fn fn);
  bool Compare(const std::string& what, const OpResult& a, const OpResult& b);
  void Log(const std::string& line) { log_.push_back(line); }

  std::string Abs(int side, const std::string& rel) const;
  uint64_t Uniform(uint64_t n) { return n == 0 ? 0 : rng_() % n; }
  bool Chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  std::string RandomBytes(size_t n);
  std::string RandomPath(const std::string& name_prefix);
  std::string ExistingPath();
  std::vector<std::string> LocalEntries();  // relative paths, depth first
  off_t LocalSize(const Handle& h);
  std::string HandleName(size_t i) const;
  void MarkModified(int local_fd);
  void MarkModifiedPath(const std::string& rel);

  bool OpOpen();
  bool OpClose();
  bool OpPwrite(size_t h, bool positional);
  bool OpPread(size_t h, bool positional);
  bool OpLseek(size_t h);
  bool OpFtruncate(size_t h);
  bool OpFsync(size_t h);
  bool OpFstat(size_t h);
  bool OpRename();
  bool OpUnlink();
  bool OpMkdir();
  bool OpRmdir();
  bool OpSymlink();
  bool OpReadlink();
  bool OpChmod();
  bool OpLink();
  bool OpStat();
  bool OpReaddir();
  bool OpTruncate();

  bool CompareEntry(const std::string& rel, bool crash, int* checked_files);

  std::string root_[2];
  Options options_;
  std::mt19937_64 rng_;
  std::vector<Handle> handles_;
  std::map<std::string, std::array<int, 2>> stats_;  // op -> {succeeded, failed}
  std::map<ino_t, Synced> synced_;                   // by local inode number
  std::vector<std::string> log_;
  std::string failure_;
  int op_index_ = 0;
  int next_extra_ = 0;
  int fsyncs_ = 0;
};

}  // namespace pgbranch::pagefs_model
