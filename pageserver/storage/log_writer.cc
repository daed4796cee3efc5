#include "pageserver/storage/log_writer.h"

#include "common/coding.h"

namespace pgbranch::storage {

absl::Status LogWriter::AddRecord(std::string_view payload) {
  std::string header;
  PutFixed32(&header, Crc32(payload));
  PutFixed32(&header, static_cast<uint32_t>(payload.size()));
  absl::Status s = file_->Append(header);
  if (s.ok()) s = file_->Append(payload);
  return s;
}

bool LogReader::ReadRecord(std::string_view* payload) {
  std::string_view rest(contents_);
  rest.remove_prefix(pos_);
  uint32_t crc, len;
  if (!GetFixed32(&rest, &crc) || !GetFixed32(&rest, &len)) return false;
  // Records are never empty; a zero header is a pre-allocated or torn tail.
  if (len == 0 || rest.size() < len) return false;
  std::string_view body = rest.substr(0, len);
  if (Crc32(body) != crc) return false;
  *payload = body;
  pos_ += 8 + len;
  return true;
}

}  // namespace pgbranch::storage
