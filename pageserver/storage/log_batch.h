#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pgbranch::storage {

// The framed records of one log write (a commit group), gathered for one pwritev: the bytes of
// every record -- its header room and the small pieces of its payload -- are copied into one
// buffer; a large value (>= kReferenceBytes) is only referenced, so it is never copied on its way
// to the log. The bytes that LogWriter::AddBatch writes are exactly those that AddFramedRecord
// writes for the same records one by one (the on-disk format does not depend on how a record was
// gathered). Each record's payload checksum is accumulated while it is built (Crc32, init 0),
// taking a value's checksum from the caller rather than reading the value again.
//
// Invariant: a referenced value must stay valid and unchanged until the batch is written or
// cleared. Not thread-safe.
class LogBatch {
 public:
  static constexpr size_t kReferenceBytes = 512;
  // Header bytes in front of each payload (LogWriter::kHeaderSize).
  static constexpr size_t kHeaderSize = 8;

  // Starts a record: room for its header (filled in by LogWriter::AddBatch).
  void BeginRecord();
  // Appends payload bytes, copied.
  void Append(std::string_view bytes);
  // Appends a value of the payload whose Crc32 (init 0) is `crc`: referenced when large.
  void AppendValue(std::string_view value, uint32_t crc);
  // Ends the record begun last.
  void EndRecord();
  // BeginRecord, Append(payload), EndRecord.
  void AddRecord(std::string_view payload);

  size_t records() const { return records_.size(); }
  // Bytes of all records, headers included.
  uint64_t bytes() const { return bytes_; }
  bool empty() const { return records_.empty(); }
  void Clear();

  // For LogWriter: each record's header offset in the buffer, payload size and payload crc.
  struct Record {
    size_t header;
    uint64_t payload_bytes;
    uint32_t payload_crc;
  };
  const std::vector<Record>& record_list() const { return records_; }
  // Writes `header` (kHeaderSize bytes) over the room of record `i`.
  void SetHeader(size_t i, const char* header);
  // The batch's bytes in order, as pieces (views valid until the batch changes).
  void Pieces(std::vector<std::string_view>* out) const;
  // All of the batch's bytes, copied (tests, and the old one-record-at-a-time path).
  std::string Flatten() const;

 private:
  // A piece of the output: buf_[off, off + len) when ext is null, else [ext, ext + len).
  struct Piece {
    const char* ext;
    size_t off;
    size_t len;
  };
  static constexpr size_t kKeepBytes = 4 << 20;  // the most buffer Clear keeps
  // Folds buf_[summed_, end) into crc_.
  void SumBuffered();

  std::string buf_;
  std::vector<Piece> pieces_;
  std::vector<Record> records_;
  uint64_t bytes_ = 0;
  // The open record: its payload checksum covers buf_[.., summed_) and the values before it.
  uint32_t crc_ = 0;
  size_t summed_ = 0;
  uint64_t payload_ = 0;
};

}  // namespace pgbranch::storage
