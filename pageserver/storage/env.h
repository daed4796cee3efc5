#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// All pageserver file I/O goes through Env (the LevelDB pattern), so tests can substitute an
// in-memory filesystem that drops un-synced data on a simulated crash and injects I/O errors.
namespace pgbranch::storage {

// An append-only file. Not thread-safe; one owner at a time.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual absl::Status Append(std::string_view data) = 0;
  // Overwrites (or extends) the file at `offset`. Later Appends continue at the end of the file.
  virtual absl::Status WriteAt(uint64_t offset, std::string_view data) = 0;
  // Writes `parts` one after another at `offset` (pwritev: one call for a commit group's records
  // and the values they reference). On failure any prefix of the bytes may have been written.
  virtual absl::Status WriteAtV(uint64_t offset, const std::vector<std::string_view>& parts) {
    for (std::string_view p : parts) {
      absl::Status s = WriteAt(offset, p);
      if (!s.ok()) return s;
      offset += p.size();
    }
    return absl::OkStatus();
  }
  // Makes every appended byte durable (fdatasync). Only after Sync returns OK may a caller
  // acknowledge anything written to this file.
  virtual absl::Status Sync() = 0;
  // Writes the range's data to the device and waits for it (sync_file_range), so that a later
  // Sync has only the rest to write. Not a durability point: the file's size and allocation are
  // not written. Default: nothing (the next Sync writes it all).
  virtual absl::Status WriteOut(uint64_t offset, uint64_t length) { return absl::OkStatus(); }
  // Cuts the file back to `size` bytes (used to drop a failed, un-acknowledged append).
  virtual absl::Status Truncate(uint64_t size) = 0;
  virtual absl::Status Close() = 0;
  virtual uint64_t Size() const = 0;
};

// How much of a large file (a layer, a log segment's zero-fill) is written out to the device at a
// time (WritableFile::WriteOut) while commits go on: a commit's fdatasync of the log then waits
// behind at most this much of it in the device's queue.
constexpr uint64_t kWriteOutBytes = 4 << 20;

// Writes out `file`'s bytes from *written_out to `end` in whole kWriteOutBytes pieces, advancing
// *written_out past each; a tail shorter than a piece waits for the next call or the file's Sync.
inline absl::Status WriteOutPieces(WritableFile* file, uint64_t end, uint64_t* written_out) {
  while (end - *written_out >= kWriteOutBytes) {
    if (absl::Status s = file->WriteOut(*written_out, kWriteOutBytes); !s.ok()) return s;
    *written_out += kWriteOutBytes;
  }
  return absl::OkStatus();
}

// A read-only file supporting concurrent positional reads. Thread-safe.
class RandomAccessFile {
 public:
  virtual ~RandomAccessFile() = default;
  // Reads up to `n` bytes at `offset` into `out` (fewer at end of file).
  virtual absl::Status Read(uint64_t offset, size_t n, std::string* out) const = 0;
  virtual uint64_t Size() const = 0;
};

class Env {
 public:
  virtual ~Env() = default;
  // Creates (or truncates) `path` for appending. The new directory entry is durable only after
  // SyncDir of its parent.
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) = 0;
  // Opens an existing file for writing without truncating it (Size() = its current size).
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> ReopenWritableFile(
      const std::string& path) = 0;
  virtual absl::StatusOr<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) = 0;
  virtual bool FileExists(const std::string& path) = 0;
  // Names (not paths) of the entries of `dir`.
  virtual absl::StatusOr<std::vector<std::string>> GetChildren(const std::string& dir) = 0;
  virtual absl::Status DeleteFile(const std::string& path) = 0;
  // Atomically replaces `to` with `from`; durable after SyncDir of the parent.
  virtual absl::Status RenameFile(const std::string& from, const std::string& to) = 0;
  // Creates `dir` and its missing parents; OK if it exists.
  virtual absl::Status CreateDirs(const std::string& dir) = 0;
  virtual absl::Status SyncDir(const std::string& dir) = 0;
  virtual absl::StatusOr<uint64_t> GetFileSize(const std::string& path) = 0;
  virtual absl::Status TruncateFile(const std::string& path, uint64_t size) = 0;
};

// The process-wide POSIX filesystem.
Env* DefaultEnv();

// Reads a whole file.
absl::StatusOr<std::string> ReadFileToString(Env* env, const std::string& path);
// Writes `data` to `path` atomically and durably: temp file, sync, rename, sync directory.
absl::Status WriteFileAtomically(Env* env, const std::string& path, std::string_view data);

std::string JoinPath(std::string_view a, std::string_view b);
std::string DirName(std::string_view path);

}  // namespace pgbranch::storage
