#include "pageserver/storage/arena.h"

#include <algorithm>
#include <cstring>

#include "pageserver/storage/layer_file.h"

namespace pgbranch::storage {

uint64_t Arena::Add(std::string_view key, uint64_t lsn, std::string_view value, bool tombstone,
                    uint32_t crc) {
  uint64_t at = size_;
  size_t done = 0;
  while (done < value.size()) {
    uint64_t pos = size_ + done;
    // Not zero-filled: only bytes below size_ are ever read or written out.
    if (pos / kChunk >= chunks_.size()) chunks_.emplace_back(new char[kChunk]);
    size_t n = std::min<uint64_t>(value.size() - done, kChunk - pos % kChunk);
    memcpy(chunks_[pos / kChunk].get() + pos % kChunk, value.data() + done, n);
    done += n;
  }
  size_ += value.size();
  entries_.push_back({std::string(key), lsn, at,
                      tombstone ? kTombstoneLen : static_cast<uint32_t>(value.size()), crc});
  return at;
}

void Arena::Read(uint64_t offset, uint32_t len, std::string* out) const {
  out->resize(len);
  size_t done = 0;
  while (done < len) {
    uint64_t pos = offset + done;
    size_t n = std::min<uint64_t>(len - done, kChunk - pos % kChunk);
    memcpy(out->data() + done, chunks_[pos / kChunk].get() + pos % kChunk, n);
    done += n;
  }
}

absl::Status Arena::WriteValues(WritableFile* file) const {
  for (uint64_t pos = 0; pos < size_; pos += kChunk) {
    uint64_t n = std::min<uint64_t>(kChunk, size_ - pos);
    absl::Status s = file->Append(std::string_view(chunks_[pos / kChunk].get(), n));
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace pgbranch::storage
