#include "pageserver/storage/commit_record.h"

#include <string_view>

#include "common/coding.h"
#include "common/proto_wire.h"
#include "pageserver/storage/log_writer.h"

namespace pgbranch::storage {
namespace {

size_t MutationSize(const Mutation& m) {
  size_t n = ProtoLenFieldSize(m.key.size());                    // key = 1
  if (!m.value.empty()) n += ProtoLenFieldSize(m.value.size());  // value = 2
  if (m.tombstone) n += 2;                                       // tombstone = 3
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
  if (!timeline_id.empty()) commit += ProtoLenFieldSize(timeline_id.size());
  if (lsn != 0) commit += 1 + VarintLength(lsn);
  if (time != 0) commit += 1 + VarintLength(time);
  for (const Mutation& m : mutations) commit += ProtoLenFieldSize(MutationSize(m));
  if (!tenant_id.empty()) commit += ProtoLenFieldSize(tenant_id.size());

  std::string out;
  out.reserve(LogWriter::kHeaderSize + ProtoLenFieldSize(commit));
  out.append(LogWriter::kHeaderSize, '\0');
  PutProtoLenHeader(&out, 1, commit);  // pb::LogRecord.commit = 1
  if (!timeline_id.empty()) PutProtoLenField(&out, 1, timeline_id);
  if (lsn != 0) PutProtoVarintField(&out, 2, lsn);
  if (time != 0) PutProtoVarintField(&out, 3, time);
  // The checksum runs over the bytes between values, and takes each value's from `crcs`.
  uint32_t crc = 0;
  size_t summed = LogWriter::kHeaderSize;  // out[0, summed) is in `crc` (header excluded)
  for (size_t i = 0; i < mutations.size(); ++i) {
    const Mutation& m = mutations[i];
    PutProtoLenHeader(&out, 4, MutationSize(m));
    PutProtoLenField(&out, 1, m.key);
    if (!m.value.empty()) {
      PutProtoLenHeader(&out, 2, m.value.size());
      crc = Crc32(std::string_view(out).substr(summed), crc);
      out.append(m.value);
      crc = Crc32Combine(crc, crcs[i], m.value.size());
      summed = out.size();
    }
    if (m.tombstone) PutProtoVarintField(&out, 3, 1);
  }
  if (!tenant_id.empty()) PutProtoLenField(&out, 5, tenant_id);
  *payload_crc = Crc32(std::string_view(out).substr(summed), crc);
  return out;
}

}  // namespace pgbranch::storage
