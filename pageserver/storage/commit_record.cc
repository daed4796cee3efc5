#include "pageserver/storage/commit_record.h"

#include <string_view>

#include "common/coding.h"
#include "pageserver/storage/log_writer.h"

namespace pgbranch::storage {
namespace {

// Protobuf wire types.
constexpr uint8_t kVarint = 0, kLen = 2;

constexpr uint8_t Tag(int field, uint8_t type) { return static_cast<uint8_t>(field << 3 | type); }

// A length-delimited field of `len` bytes: tag, length, bytes.
size_t LenFieldSize(size_t len) { return 1 + VarintLength(len) + len; }

size_t MutationSize(const Mutation& m) {
  size_t n = LenFieldSize(m.key.size());                    // key = 1
  if (!m.value.empty()) n += LenFieldSize(m.value.size());  // value = 2
  if (m.tombstone) n += 2;                                  // tombstone = 3
  return n;
}

}  // namespace

std::string FrameCommitRecord(const std::string& tenant_id, const std::string& timeline_id,
                              uint64_t lsn, int64_t time_micros,
                              const std::vector<Mutation>& mutations,
                              const std::vector<uint32_t>& crcs, uint32_t* payload_crc) {
  // pb::Commit: timeline_id = 1, lsn = 2, time_micros = 3, mutations = 4, tenant_id = 5. Proto3:
  // zero and empty fields are not written.
  const uint64_t time = static_cast<uint64_t>(time_micros);
  size_t commit = 0;
  if (!timeline_id.empty()) commit += LenFieldSize(timeline_id.size());
  if (lsn != 0) commit += 1 + VarintLength(lsn);
  if (time != 0) commit += 1 + VarintLength(time);
  for (const Mutation& m : mutations) commit += LenFieldSize(MutationSize(m));
  if (!tenant_id.empty()) commit += LenFieldSize(tenant_id.size());

  std::string out;
  out.reserve(LogWriter::kHeaderSize + LenFieldSize(commit));
  out.append(LogWriter::kHeaderSize, '\0');
  auto put_len = [&](int field, std::string_view bytes) {
    out.push_back(static_cast<char>(Tag(field, kLen)));
    PutVarint64(&out, bytes.size());
    out.append(bytes);
  };
  out.push_back(static_cast<char>(Tag(1, kLen)));  // pb::LogRecord.commit = 1
  PutVarint64(&out, commit);
  if (!timeline_id.empty()) put_len(1, timeline_id);
  if (lsn != 0) {
    out.push_back(static_cast<char>(Tag(2, kVarint)));
    PutVarint64(&out, lsn);
  }
  if (time != 0) {
    out.push_back(static_cast<char>(Tag(3, kVarint)));
    PutVarint64(&out, time);
  }
  // The checksum runs over the bytes between values, and takes each value's from `crcs`.
  uint32_t crc = 0;
  size_t summed = LogWriter::kHeaderSize;  // out[0, summed) is in `crc` (header excluded)
  for (size_t i = 0; i < mutations.size(); ++i) {
    const Mutation& m = mutations[i];
    out.push_back(static_cast<char>(Tag(4, kLen)));
    PutVarint64(&out, MutationSize(m));
    put_len(1, m.key);
    if (!m.value.empty()) {
      out.push_back(static_cast<char>(Tag(2, kLen)));
      PutVarint64(&out, m.value.size());
      crc = Crc32(std::string_view(out).substr(summed), crc);
      out.append(m.value);
      crc = Crc32Combine(crc, crcs[i], m.value.size());
      summed = out.size();
    }
    if (m.tombstone) {
      out.push_back(static_cast<char>(Tag(3, kVarint)));
      out.push_back(1);
    }
  }
  if (!tenant_id.empty()) put_len(5, tenant_id);
  *payload_crc = Crc32(std::string_view(out).substr(summed), crc);
  return out;
}

}  // namespace pgbranch::storage
