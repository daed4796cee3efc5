#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "pageserver/storage/env.h"

namespace pgbranch::storage {

// An in-memory layer: the values a timeline committed since its last freeze, in one append-only
// byte space, plus the list of versions that point into it.
//
// The byte space is written to a layer file verbatim as the file's values region, so a version's
// offset is the same in the arena and in the file that replaces it: a flush swaps the layer's
// source and never touches the layer map.
//
// Thread safety: appended only by the engine's write-queue holder under the state lock; read
// under the state lock. Once frozen it is immutable and may be read without locks.
class Arena {
 public:
  struct Entry {
    std::string key;
    uint64_t lsn;
    uint64_t offset;
    uint32_t len;  // kTombstoneLen for a deletion
    uint32_t crc;
  };

  explicit Arena(uint32_t id) : id_(id) {}

  uint32_t id() const { return id_; }
  // Stores a value (empty for a tombstone) and records its version; returns the offset.
  uint64_t Add(std::string_view key, uint64_t lsn, std::string_view value, bool tombstone,
               uint32_t crc);
  void Read(uint64_t offset, uint32_t len, std::string* out) const;
  uint64_t bytes() const { return size_; }
  bool empty() const { return entries_.empty(); }
  const std::vector<Entry>& entries() const { return entries_; }
  // Appends the whole byte space to `file`.
  absl::Status WriteValues(WritableFile* file) const;

 private:
  static constexpr uint64_t kChunk = 1 << 20;

  uint32_t id_;
  std::vector<std::unique_ptr<char[]>> chunks_;
  uint64_t size_ = 0;
  std::vector<Entry> entries_;
};

}  // namespace pgbranch::storage
