#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "pageserver/storage/env.h"

namespace pgbranch::storage {

// An immutable, sorted layer file holding versions of one timeline's keys.
//
// Format:
//   [values, concatenated]
//   [index: per entry key (length-prefixed), lsn (varint), value offset (varint),
//           value length (varint; 0xffffffff marks a tombstone), crc32 of the value (fixed32)]
//   [footer, 32 bytes: index offset u64, index length u64, index crc32 u32, entry count u32,
//           magic u64]
// Entries are sorted by (key, lsn). Every value carries its own checksum, verified on every read,
// so a corrupt file is reported (DataLoss) and never served.
inline constexpr uint32_t kTombstoneLen = 0xffffffffu;

struct LayerEntry {
  std::string_view key;
  uint64_t lsn;
  uint64_t offset;
  uint32_t len;  // kTombstoneLen for a deletion
  uint32_t crc;
};

class LayerWriter {
 public:
  explicit LayerWriter(std::unique_ptr<WritableFile> file) : file_(std::move(file)) {}
  // Entries must be added in (key, lsn) order. Returns the value's offset in the file and
  // stores its checksum in `*crc`.
  absl::StatusOr<uint64_t> Add(std::string_view key, uint64_t lsn, std::string_view value,
                               bool tombstone, uint32_t* crc);
  // The other way to build a file: write the whole values region in one piece (an arena's bytes),
  // then describe each entry, in (key, lsn) order, with AddIndexEntry.
  absl::Status AppendValueRegion(uint64_t bytes,
                                 const std::function<absl::Status(WritableFile*)>& write);
  void AddIndexEntry(std::string_view key, uint64_t lsn, uint64_t offset, uint32_t len,
                     uint32_t crc);
  // Writes the index and footer, syncs and closes the file.
  absl::Status Finish();
  uint64_t entries() const { return entries_; }

 private:
  // Writes out what was appended since the last call, kWriteOutBytes at a time (below).
  absl::Status WriteOutAppended();

  std::unique_ptr<WritableFile> file_;
  std::string index_;
  uint64_t offset_ = 0;
  uint64_t written_out_ = 0;  // bytes before this offset are on the device (WriteOut)
  uint32_t entries_ = 0;
};

class LayerFile {
 public:
  // Opens a layer and verifies its index checksum.
  static absl::StatusOr<std::shared_ptr<LayerFile>> Open(Env* env, const std::string& path,
                                                         uint32_t id);

  // Calls `fn` for every entry in file order.
  void ForEach(const std::function<void(const LayerEntry&)>& fn) const;
  // Reads one value and checks its crc.
  absl::Status ReadValue(uint64_t offset, uint32_t len, uint32_t crc, std::string* out) const;

  uint32_t id() const { return id_; }
  const std::string& path() const { return path_; }
  uint64_t file_size() const { return file_->Size(); }

 private:
  LayerFile(std::string path, uint32_t id, std::unique_ptr<RandomAccessFile> file)
      : path_(std::move(path)), id_(id), file_(std::move(file)) {}

  std::string path_;
  uint32_t id_;
  std::unique_ptr<RandomAccessFile> file_;
  std::string index_;
  uint32_t count_ = 0;
};

}  // namespace pgbranch::storage
