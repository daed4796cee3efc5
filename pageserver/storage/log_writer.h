#pragma once

#include <memory>
#include <string_view>

#include "pageserver/storage/env.h"

namespace pgbranch::storage {

// Appends framed records to one log segment: [crc32 of payload][payload length][payload], both
// little-endian u32. A torn or corrupt tail is detected by LogReader and ignored at recovery.
// Not thread-safe: the engine's write queue serialises all callers.
class LogWriter {
 public:
  explicit LogWriter(std::unique_ptr<WritableFile> file) : file_(std::move(file)) {}

  absl::Status AddRecord(std::string_view payload);
  absl::Status Sync() { return file_->Sync(); }
  // Drops everything appended after `size` (a failed, un-acknowledged group).
  absl::Status TruncateTo(uint64_t size) { return file_->Truncate(size); }
  uint64_t Size() const { return file_->Size(); }
  absl::Status Close() { return file_->Close(); }

 private:
  std::unique_ptr<WritableFile> file_;
};

// Reads the records of one segment in order. Stops at the first torn or corrupt record.
class LogReader {
 public:
  explicit LogReader(std::string contents) : contents_(std::move(contents)) {}
  // Returns false at the end of the valid records.
  bool ReadRecord(std::string_view* payload);
  // Bytes of valid records consumed so far; anything after this at the end is a torn tail.
  uint64_t ValidBytes() const { return pos_; }
  uint64_t TotalBytes() const { return contents_.size(); }

 private:
  std::string contents_;
  uint64_t pos_ = 0;
};

}  // namespace pgbranch::storage
