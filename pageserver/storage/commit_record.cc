#include "pageserver/storage/commit_record.h"

#include "common/coding.h"
#include "common/proto_wire.h"

namespace pgbranch::storage {
namespace {

size_t MutationSize(const MutationView& m) {
  size_t n = ProtoLenFieldSize(m.key.size());                    // key = 1
  if (!m.value.empty()) n += ProtoLenFieldSize(m.value.size());  // value = 2
  if (m.tombstone) n += 2;                                       // tombstone = 3
  return n;
}

}  // namespace

void AppendCommitRecord(std::string_view tenant_id, std::string_view timeline_id, uint64_t lsn,
                        int64_t time_micros, const MutationView* mutations, size_t n,
                        const uint32_t* crcs, LogBatch* batch) {
  // pb::Commit: timeline_id = 1, lsn = 2, time_micros = 3, mutations = 4, tenant_id = 5. Proto3:
  // zero and empty fields are not written.
  const uint64_t time = static_cast<uint64_t>(time_micros);
  size_t commit = 0;
  if (!timeline_id.empty()) commit += ProtoLenFieldSize(timeline_id.size());
  if (lsn != 0) commit += 1 + VarintLength(lsn);
  if (time != 0) commit += 1 + VarintLength(time);
  for (size_t i = 0; i < n; ++i) commit += ProtoLenFieldSize(MutationSize(mutations[i]));
  if (!tenant_id.empty()) commit += ProtoLenFieldSize(tenant_id.size());

  // The bytes between values are gathered in `small` and copied into the batch before each value.
  thread_local std::string small;
  small.clear();
  batch->BeginRecord();
  PutProtoLenHeader(&small, 1, commit);  // pb::LogRecord.commit = 1
  if (!timeline_id.empty()) PutProtoLenField(&small, 1, timeline_id);
  if (lsn != 0) PutProtoVarintField(&small, 2, lsn);
  if (time != 0) PutProtoVarintField(&small, 3, time);
  for (size_t i = 0; i < n; ++i) {
    const MutationView& m = mutations[i];
    PutProtoLenHeader(&small, 4, MutationSize(m));
    PutProtoLenField(&small, 1, m.key);
    if (!m.value.empty()) {
      PutProtoLenHeader(&small, 2, m.value.size());
      batch->Append(small);
      small.clear();
      batch->AppendValue(m.value, crcs[i]);
    }
    if (m.tombstone) PutProtoVarintField(&small, 3, 1);
  }
  if (!tenant_id.empty()) PutProtoLenField(&small, 5, tenant_id);
  batch->Append(small);
  batch->EndRecord();
}

std::string FrameCommitRecord(const std::string& tenant_id, const std::string& timeline_id,
                              uint64_t lsn, int64_t time_micros,
                              const std::vector<Mutation>& mutations,
                              const std::vector<uint32_t>& crcs, uint32_t* payload_crc) {
  std::vector<MutationView> views;
  views.reserve(mutations.size());
  for (const Mutation& m : mutations) views.push_back({m.key, m.value, m.tombstone});
  LogBatch batch;
  AppendCommitRecord(tenant_id, timeline_id, lsn, time_micros, views.data(), views.size(),
                     crcs.data(), &batch);
  *payload_crc = batch.record_list()[0].payload_crc;
  return batch.Flatten();
}

}  // namespace pgbranch::storage
