#include "pageserver/storage/layer_file.h"

#include "absl/strings/str_cat.h"
#include "common/coding.h"

namespace pgbranch::storage {
namespace {
constexpr uint64_t kMagic = 0x7067627261796572ull;  // "pgbrayer"
constexpr size_t kFooterSize = 32;
}  // namespace

absl::StatusOr<uint64_t> LayerWriter::Add(std::string_view key, uint64_t lsn,
                                          std::string_view value, bool tombstone, uint32_t* crc) {
  uint64_t at = offset_;
  *crc = tombstone ? 0 : Crc32(value);
  uint32_t len = tombstone ? kTombstoneLen : static_cast<uint32_t>(value.size());
  if (!tombstone && !value.empty()) {
    absl::Status s = file_->Append(value);
    if (!s.ok()) return s;
    offset_ += value.size();
    if (s = WriteOutAppended(); !s.ok()) return s;
  }
  PutLengthPrefixed(&index_, key);
  PutVarint64(&index_, lsn);
  PutVarint64(&index_, at);
  PutVarint64(&index_, len);
  PutFixed32(&index_, *crc);
  ++entries_;
  return at;
}

absl::Status LayerWriter::AppendValueRegion(
    uint64_t bytes, const std::function<absl::Status(WritableFile*)>& write) {
  absl::Status s = write(file_.get());
  if (s.ok()) offset_ += bytes;
  if (s.ok()) s = WriteOutAppended();
  return s;
}

absl::Status LayerWriter::WriteOutAppended() {
  // A layer is written while commits go on: written out a few MiB at a time, the device never
  // holds more than that ahead of a commit's fdatasync of the log (one Sync of a whole layer
  // would queue all of it, up to the memtables' 256 MiB, in front of them).
  return WriteOutPieces(file_.get(), offset_, &written_out_);
}

void LayerWriter::AddIndexEntry(std::string_view key, uint64_t lsn, uint64_t offset, uint32_t len,
                                uint32_t crc) {
  PutLengthPrefixed(&index_, key);
  PutVarint64(&index_, lsn);
  PutVarint64(&index_, offset);
  PutVarint64(&index_, len);
  PutFixed32(&index_, crc);
  ++entries_;
}

absl::Status LayerWriter::Finish() {
  std::string footer;
  PutFixed64(&footer, offset_);
  PutFixed64(&footer, index_.size());
  PutFixed32(&footer, Crc32(index_));
  PutFixed32(&footer, entries_);
  PutFixed64(&footer, kMagic);
  absl::Status s = file_->Append(index_);
  if (s.ok()) s = file_->Append(footer);
  if (s.ok()) s = file_->Sync();
  if (s.ok()) s = file_->Close();
  return s;
}

absl::StatusOr<std::shared_ptr<LayerFile>> LayerFile::Open(Env* env, const std::string& path,
                                                           uint32_t id) {
  auto file = env->NewRandomAccessFile(path);
  if (!file.ok()) return file.status();
  std::shared_ptr<LayerFile> layer(new LayerFile(path, id, std::move(*file)));
  uint64_t size = layer->file_->Size();
  auto corrupt = [&](const char* why) {
    return absl::DataLossError(absl::StrCat("layer file ", path, " is corrupt (", why,
                                            "); restore it from a backup or delete the timeline"));
  };
  if (size < kFooterSize) return corrupt("shorter than its footer");
  std::string footer;
  absl::Status s = layer->file_->Read(size - kFooterSize, kFooterSize, &footer);
  if (!s.ok()) return s;
  const char* p = footer.data();
  uint64_t index_offset = DecodeFixed64(p);
  uint64_t index_len = DecodeFixed64(p + 8);
  uint32_t index_crc = DecodeFixed32(p + 16);
  layer->count_ = DecodeFixed32(p + 20);
  if (DecodeFixed64(p + 24) != kMagic) return corrupt("bad magic");
  if (index_offset + index_len + kFooterSize != size) return corrupt("bad index bounds");
  s = layer->file_->Read(index_offset, index_len, &layer->index_);
  if (!s.ok()) return s;
  if (layer->index_.size() != index_len || Crc32(layer->index_) != index_crc) {
    return corrupt("index checksum mismatch");
  }
  // Validate the whole index once so ForEach can trust it.
  std::string_view in(layer->index_);
  for (uint32_t i = 0; i < layer->count_; ++i) {
    std::string_view key;
    uint64_t lsn, off, len;
    uint32_t crc;
    if (!GetLengthPrefixed(&in, &key) || !GetVarint64(&in, &lsn) || !GetVarint64(&in, &off) ||
        !GetVarint64(&in, &len) || !GetFixed32(&in, &crc)) {
      return corrupt("truncated index");
    }
    if (len != kTombstoneLen && off + len > index_offset) return corrupt("value out of bounds");
  }
  return layer;
}

void LayerFile::ForEach(const std::function<void(const LayerEntry&)>& fn) const {
  std::string_view in(index_);
  for (uint32_t i = 0; i < count_; ++i) {
    LayerEntry e;
    uint64_t len;
    GetLengthPrefixed(&in, &e.key);
    GetVarint64(&in, &e.lsn);
    GetVarint64(&in, &e.offset);
    GetVarint64(&in, &len);
    GetFixed32(&in, &e.crc);
    e.len = static_cast<uint32_t>(len);
    fn(e);
  }
}

absl::Status LayerFile::ReadValue(uint64_t offset, uint32_t len, uint32_t crc,
                                  std::string* out) const {
  absl::Status s = file_->Read(offset, len, out);
  if (!s.ok()) return s;
  if (out->size() != len || Crc32(*out) != crc) {
    out->clear();
    return absl::DataLossError(absl::StrCat("layer file ", path_, " failed its checksum at offset ",
                                            offset,
                                            "; the data was not served. Restore the file "
                                            "from a backup or recreate the branch"));
  }
  return absl::OkStatus();
}

}  // namespace pgbranch::storage
