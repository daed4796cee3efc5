#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "pageserver/storage/env.h"

namespace pgbranch::storage {

// An in-memory Env for tests that models what a crash keeps:
//  - file contents survive a crash only as of the last Sync() (appends and overwrites alike);
//  - a created, renamed or deleted directory entry survives only after SyncDir of its parent.
// It can also inject failures: a byte budget after which appends fail with ENOSPC, and failing
// syncs. Thread-safe.
class MemEnv : public Env {
 public:
  MemEnv() = default;

  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override;
  absl::StatusOr<std::unique_ptr<WritableFile>> ReopenWritableFile(
      const std::string& path) override;
  absl::StatusOr<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) override;
  bool FileExists(const std::string& path) override;
  absl::StatusOr<std::vector<std::string>> GetChildren(const std::string& dir) override;
  absl::Status DeleteFile(const std::string& path) override;
  absl::Status RenameFile(const std::string& from, const std::string& to) override;
  absl::Status CreateDirs(const std::string& dir) override;
  absl::Status SyncDir(const std::string& dir) override;
  absl::StatusOr<uint64_t> GetFileSize(const std::string& path) override;
  absl::Status TruncateFile(const std::string& path, uint64_t size) override;

  // Forgets everything that was not made durable, as a power loss would. Open handles become
  // invalid; callers must drop them (the engine under test is destroyed first).
  void SimulateCrash();
  // Appends fail with ResourceExhausted once `bytes` more bytes have been appended (-1: never).
  void SetSpaceBudget(int64_t bytes);
  void SetSyncFailure(bool fail);
  // The write (WriteAt, WriteAtV) that takes the written bytes past `bytes` more fails with an
  // I/O error after writing its first bytes, up to the budget (a torn write); -1: never. One
  // fault: the writes after it succeed (the budget is reset to -1).
  void SetWriteBudget(int64_t bytes);
  // Sum of all file sizes (what a `du` would report).
  uint64_t TotalBytes();
  // Flips one byte of a file in place (durably), to test checksums.
  absl::Status CorruptByte(const std::string& path, uint64_t offset);

  struct FileData {
    std::string data;
    std::string durable;  // the contents as of the last Sync: what survives a crash
  };

 private:
  friend class MemWritableFile;
  absl::Status ConsumeSpace(size_t n);
  bool SyncFails();
  // How many of `n` bytes the write budget lets through (all of them without a budget).
  size_t TakeWriteBudget(size_t n);

  std::mutex mu_;
  // The live namespace and the one that survives a crash.
  std::map<std::string, std::shared_ptr<FileData>> files_;
  std::map<std::string, std::shared_ptr<FileData>> durable_files_;
  std::map<std::string, bool> dirs_;
  int64_t space_budget_ = -1;
  bool sync_fails_ = false;
  int64_t write_budget_ = -1;
};

}  // namespace pgbranch::storage
