#include "pageserver/pagefs/commit_frame.h"

#include "common/coding.h"
#include "common/proto_wire.h"
#include "pageserver/pagefs/page_store.h"

namespace pgbranch::pagefs {
namespace {

// pageserver.proto: CommitRequest {tenant_id = 1, timeline_id = 2, generation = 3,
// mutations = 4}, Mutation {key = 1, value = 2, tombstone = 3}. Proto3 writes no empty string
// and no zero number.
size_t OptionalLenFieldSize(size_t n) { return n == 0 ? 0 : ProtoLenFieldSize(n); }

void PutOptionalLenField(std::string* out, int field, std::string_view bytes) {
  if (!bytes.empty()) PutProtoLenField(out, field, bytes);
}

size_t MutationSize(const PageMutation& m) {
  return OptionalLenFieldSize(m.key.size()) +
         (m.tombstone ? 2 : OptionalLenFieldSize(m.value.size()));
}

}  // namespace

void AppendCommitFrame(std::string_view tenant_id, std::string_view timeline_id,
                       uint64_t generation, const std::vector<PageMutation>& mutations,
                       std::string* out) {
  size_t size = OptionalLenFieldSize(tenant_id.size()) + OptionalLenFieldSize(timeline_id.size());
  if (generation != 0) size += 1 + VarintLength(generation);
  // Each mutation is written even when empty (an element of a repeated message).
  for (const PageMutation& m : mutations) size += ProtoLenFieldSize(MutationSize(m));
  out->reserve(out->size() + 4 + size);
  PutFixed32(out, static_cast<uint32_t>(size));  // the frame's length (frame_io.h)
  PutOptionalLenField(out, 1, tenant_id);
  PutOptionalLenField(out, 2, timeline_id);
  if (generation != 0) PutProtoVarintField(out, 3, generation);
  for (const PageMutation& m : mutations) {
    PutProtoLenHeader(out, 4, MutationSize(m));
    PutOptionalLenField(out, 1, m.key);
    if (m.tombstone) {
      PutProtoVarintField(out, 3, 1);
    } else {
      PutOptionalLenField(out, 2, m.value);
    }
  }
}

}  // namespace pgbranch::pagefs
