#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "pageserver/storage/env.h"
#include "pageserver/storage/log_batch.h"

namespace pgbranch::storage {

// Writes framed records to one log segment: [crc32 of payload][payload length][payload], both
// little-endian u32. A torn or corrupt tail, or the zeros after the last record, end the segment
// for LogReader.
//
// Like PostgreSQL's WAL segments, the file is zero-filled ahead of the records in chunks of
// `prealloc_bytes` (synced once). Records then overwrite blocks that already exist, so the
// fdatasync of a commit flushes data only, with no file-size or extent change to journal: on ext4
// that is ~50x faster than syncing an append. Disk-full can only happen while zero-filling,
// before any record is written, so it fails a commit cleanly.
// Not thread-safe: the engine's write queue serialises all callers.
//
// Segments are recycled, as PostgreSQL recycles WAL segments: a retired segment file is reused,
// already allocated, for a later segment number. Each record's checksum is seeded with its
// segment number, so the stale records after the new ones fail their checksum and end the segment.
class LogWriter {
 public:
  // `existing_bytes`: the size of a recycled file, whose blocks need no zero-filling.
  LogWriter(std::unique_ptr<WritableFile> file, uint64_t seq, uint64_t prealloc_bytes,
            uint64_t existing_bytes = 0)
      : file_(std::move(file)),
        seed_(SeedFor(seq)),
        prealloc_bytes_(prealloc_bytes),
        allocated_(existing_bytes) {}

  static uint32_t SeedFor(uint64_t seq) {
    return static_cast<uint32_t>(seq * 0x9E3779B97F4A7C15ull >> 32);
  }

  // Zero-fills so that at least `bytes` more bytes of records fit, and syncs.
  absl::Status Reserve(uint64_t bytes);
  absl::Status AddRecord(std::string_view payload);
  // The frame's header bytes, in front of each payload.
  static constexpr size_t kHeaderSize = 8;
  // Like AddRecord, for a payload that already follows kHeaderSize bytes of room at the front of
  // *framed (serialised there, so that the payload of a large commit is not copied once more to
  // be framed). Fills the header in place and writes the whole frame.
  absl::Status AddFramedRecord(std::string* framed);
  // AddFramedRecord with the payload's checksum already known: `payload_crc` = Crc32(payload)
  // (init 0), seeded here for this segment without another pass over the payload.
  absl::Status AddFramedRecord(std::string* framed, uint32_t payload_crc);
  // Writes the records of `batch` (their headers filled in place) in one WriteAtV: the same bytes
  // as AddFramedRecord of each record in turn.
  absl::Status AddBatch(LogBatch* batch);
  // Whether records of `bytes` in all fit in the zero-filled space.
  bool Fits(uint64_t bytes) const { return end_ + bytes <= allocated_; }
  absl::Status Sync() { return file_->Sync(); }
  // Drops everything written after `size` (a failed, un-acknowledged group): zeroes up to the
  // furthest byte any write reached, failed writes included (a group write that failed part way
  // may have left whole, valid records behind the end of the records).
  absl::Status TruncateTo(uint64_t size);
  // End of the records (not of the file).
  uint64_t Size() const { return end_; }
  absl::Status Close() { return file_->Close(); }

 private:
  std::unique_ptr<WritableFile> file_;
  uint32_t seed_;
  uint64_t prealloc_bytes_;
  uint64_t end_ = 0;  // end of the last record
  // The furthest byte a record write (succeeded or not) may have reached: >= end_.
  uint64_t written_ = 0;
  std::vector<std::string_view> pieces_;  // AddBatch's, kept for their capacity
  uint64_t allocated_ = 0;  // allocated and synced bytes (zero-filled, or a recycled file)
};

// Reads the records of one segment in order. Stops at the first torn or corrupt record.
class LogReader {
 public:
  LogReader(std::string contents, uint64_t seq)
      : contents_(std::move(contents)), seed_(LogWriter::SeedFor(seq)) {}
  // Returns false at the end of the valid records.
  bool ReadRecord(std::string_view* payload);
  // Bytes of valid records consumed so far; anything after this at the end is a torn tail.
  uint64_t ValidBytes() const { return pos_; }
  uint64_t TotalBytes() const { return contents_.size(); }
  // True if everything after the valid records is zero-fill (a clean end, not a torn write or
  // a recycled file's stale records).
  bool CleanTail() const;

 private:
  std::string contents_;
  uint32_t seed_;
  uint64_t pos_ = 0;
};

}  // namespace pgbranch::storage
