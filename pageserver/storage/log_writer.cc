#include "pageserver/storage/log_writer.h"

#include <algorithm>

#include "common/coding.h"

namespace pgbranch::storage {
namespace {

// A record's header: Crc32(payload, seed) -- the seed continued by the payload, whose own
// checksum (init 0) is `payload_crc` -- and the payload's length.
std::string RecordHeader(uint32_t seed, uint32_t payload_crc, uint64_t payload_size) {
  std::string header;
  PutFixed32(&header, Crc32Combine(seed, payload_crc, payload_size));
  PutFixed32(&header, static_cast<uint32_t>(payload_size));
  return header;
}

}  // namespace

absl::Status LogWriter::Reserve(uint64_t bytes) {
  if (end_ + bytes <= allocated_) return absl::OkStatus();
  uint64_t grow = std::max(prealloc_bytes_, end_ + bytes - allocated_);
  static const std::string kZeros(1 << 20, '\0');
  // Written out kWriteOutBytes at a time: a spare segment is filled while commits go on, and one
  // fdatasync of a whole 64 MiB segment kept their fdatasyncs of the log waiting 40-130 ms.
  uint64_t at = allocated_;
  uint64_t written_out = allocated_;
  absl::Status s;
  while (s.ok() && at < allocated_ + grow) {
    uint64_t n = std::min<uint64_t>(kZeros.size(), allocated_ + grow - at);
    s = file_->WriteAt(at, std::string_view(kZeros.data(), n));
    at += n;
    if (s.ok()) s = WriteOutPieces(file_.get(), at, &written_out);
  }
  if (s.ok()) s = file_->Sync();
  if (!s.ok()) {
    // Give the partial zero-fill back; no record was written.
    file_->Truncate(allocated_).IgnoreError();
    return s;
  }
  allocated_ += grow;
  return absl::OkStatus();
}

absl::Status LogWriter::AddRecord(std::string_view payload) {
  std::string framed(kHeaderSize, '\0');
  framed.append(payload.data(), payload.size());
  return AddFramedRecord(&framed);
}

absl::Status LogWriter::AddFramedRecord(std::string* framed) {
  if (framed->size() < kHeaderSize)
    return absl::InvalidArgumentError("a log frame without a header");
  return AddFramedRecord(framed, Crc32(std::string_view(*framed).substr(kHeaderSize)));
}

absl::Status LogWriter::AddFramedRecord(std::string* framed, uint32_t payload_crc) {
  if (framed->size() < kHeaderSize)
    return absl::InvalidArgumentError("a log frame without a header");
  uint64_t payload_size = framed->size() - kHeaderSize;
  framed->replace(0, kHeaderSize, RecordHeader(seed_, payload_crc, payload_size));
  absl::Status s = Reserve(framed->size());
  if (!s.ok()) return s;
  written_ = std::max(written_, end_ + framed->size());
  s = file_->WriteAt(end_, *framed);
  if (!s.ok()) return s;
  end_ += framed->size();
  return absl::OkStatus();
}

absl::Status LogWriter::AddBatch(LogBatch* batch) {
  static_assert(LogBatch::kHeaderSize == kHeaderSize);
  if (batch->empty()) return absl::OkStatus();
  const auto& records = batch->record_list();
  for (size_t i = 0; i < records.size(); ++i) {
    batch->SetHeader(i,
                     RecordHeader(seed_, records[i].payload_crc, records[i].payload_bytes).data());
  }
  absl::Status s = Reserve(batch->bytes());
  if (!s.ok()) return s;
  batch->Pieces(&pieces_);
  written_ = std::max(written_, end_ + batch->bytes());
  s = file_->WriteAtV(end_, pieces_);
  pieces_.clear();
  if (!s.ok()) return s;
  end_ += batch->bytes();
  return absl::OkStatus();
}

absl::Status LogWriter::TruncateTo(uint64_t size) {
  uint64_t to = std::max(end_, written_);
  if (size >= to) return absl::OkStatus();
  // Zero the dropped records so a reader stops at `size`.
  absl::Status s = file_->WriteAt(size, std::string(to - size, '\0'));
  if (s.ok()) end_ = written_ = size;
  return s;
}

bool LogReader::CleanTail() const {
  return std::all_of(contents_.begin() + static_cast<std::ptrdiff_t>(pos_), contents_.end(),
                     [](char c) { return c == 0; });
}

bool LogReader::ReadRecord(std::string_view* payload) {
  std::string_view rest(contents_);
  rest.remove_prefix(pos_);
  uint32_t crc, len;
  if (!GetFixed32(&rest, &crc) || !GetFixed32(&rest, &len)) return false;
  // Records are never empty; a zero header is a pre-allocated or torn tail.
  if (len == 0 || rest.size() < len) return false;
  std::string_view body = rest.substr(0, len);
  if (Crc32(body, seed_) != crc) return false;
  *payload = body;
  pos_ += 8 + len;
  return true;
}

}  // namespace pgbranch::storage
