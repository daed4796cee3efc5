#include "pageserver/storage/log_batch.h"

#include <cstring>

#include "common/coding.h"

namespace pgbranch::storage {

void LogBatch::BeginRecord() {
  records_.push_back({buf_.size(), 0, 0});
  buf_.append(kHeaderSize, '\0');
  if (!pieces_.empty() && pieces_.back().ext == nullptr &&
      pieces_.back().off + pieces_.back().len == records_.back().header) {
    pieces_.back().len += kHeaderSize;
  } else {
    pieces_.push_back({nullptr, records_.back().header, kHeaderSize});
  }
  bytes_ += kHeaderSize;
  crc_ = 0;
  summed_ = buf_.size();
  payload_ = 0;
}

void LogBatch::Append(std::string_view bytes) {
  if (bytes.empty()) return;
  size_t off = buf_.size();
  buf_.append(bytes);
  if (!pieces_.empty() && pieces_.back().ext == nullptr &&
      pieces_.back().off + pieces_.back().len == off) {
    pieces_.back().len += bytes.size();
  } else {
    pieces_.push_back({nullptr, off, bytes.size()});
  }
  bytes_ += bytes.size();
  payload_ += bytes.size();
}

void LogBatch::SumBuffered() {
  if (buf_.size() > summed_) {
    crc_ = Crc32(std::string_view(buf_).substr(summed_), crc_);
    summed_ = buf_.size();
  }
}

void LogBatch::AppendValue(std::string_view value, uint32_t crc) {
  if (value.empty()) return;
  SumBuffered();
  if (value.size() >= kReferenceBytes) {
    pieces_.push_back({value.data(), 0, value.size()});
    bytes_ += value.size();
    payload_ += value.size();
  } else {
    Append(value);
    summed_ = buf_.size();
  }
  crc_ = Crc32Combine(crc_, crc, value.size());
}

void LogBatch::EndRecord() {
  SumBuffered();
  records_.back().payload_bytes = payload_;
  records_.back().payload_crc = crc_;
}

void LogBatch::AddRecord(std::string_view payload) {
  BeginRecord();
  Append(payload);
  EndRecord();
}

void LogBatch::Clear() {
  // A batch is reused for every group: keep its buffer, unless a burst of small values grew it.
  if (buf_.capacity() > kKeepBytes) {
    std::string().swap(buf_);
  } else {
    buf_.clear();
  }
  pieces_.clear();
  records_.clear();
  bytes_ = 0;
}

void LogBatch::SetHeader(size_t i, const char* header) {
  std::memcpy(buf_.data() + records_[i].header, header, kHeaderSize);
}

void LogBatch::Pieces(std::vector<std::string_view>* out) const {
  out->clear();
  out->reserve(pieces_.size());
  for (const Piece& p : pieces_) {
    out->push_back(p.ext != nullptr ? std::string_view(p.ext, p.len)
                                    : std::string_view(buf_.data() + p.off, p.len));
  }
}

std::string LogBatch::Flatten() const {
  std::vector<std::string_view> pieces;
  Pieces(&pieces);
  std::string out;
  out.reserve(bytes_);
  for (std::string_view p : pieces) out.append(p);
  return out;
}

}  // namespace pgbranch::storage
