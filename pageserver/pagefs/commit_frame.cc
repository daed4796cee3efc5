#include "pageserver/pagefs/commit_frame.h"

#include "common/coding.h"
#include "pageserver/pagefs/page_store.h"

namespace pgbranch::pagefs {
namespace {

// pageserver.proto: CommitRequest {tenant_id = 1, timeline_id = 2, generation = 3,
// mutations = 4}, Mutation {key = 1, value = 2, tombstone = 3}. Tag = field << 3 | wire type.
constexpr char kLen = 2, kVarint = 0;
constexpr char Tag(int field, char wire) { return static_cast<char>(field << 3 | wire); }

// A length-delimited field of `n` bytes, tag included (0 when empty: proto3 omits it).
size_t LenFieldSize(size_t n) { return n == 0 ? 0 : 1 + VarintLength(n) + n; }

void PutLenField(int field, std::string_view bytes, std::string* out) {
  if (bytes.empty()) return;
  out->push_back(Tag(field, kLen));
  PutVarint64(out, bytes.size());
  out->append(bytes);
}

size_t MutationSize(const PageMutation& m) {
  return LenFieldSize(m.key.size()) + (m.tombstone ? 2 : LenFieldSize(m.value.size()));
}

}  // namespace

void AppendCommitFrame(std::string_view tenant_id, std::string_view timeline_id,
                       uint64_t generation, const std::vector<PageMutation>& mutations,
                       std::string* out) {
  size_t size = LenFieldSize(tenant_id.size()) + LenFieldSize(timeline_id.size());
  if (generation != 0) size += 1 + VarintLength(generation);
  for (const PageMutation& m : mutations) {
    size_t n = MutationSize(m);
    size += 1 + VarintLength(n) + n;  // written even when empty (a repeated message)
  }
  out->reserve(out->size() + 4 + size);
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(size >> (8 * i)));
  PutLenField(1, tenant_id, out);
  PutLenField(2, timeline_id, out);
  if (generation != 0) {
    out->push_back(Tag(3, kVarint));
    PutVarint64(out, generation);
  }
  for (const PageMutation& m : mutations) {
    out->push_back(Tag(4, kLen));
    PutVarint64(out, MutationSize(m));
    PutLenField(1, m.key, out);
    if (m.tombstone) {
      out->push_back(Tag(3, kVarint));
      out->push_back(1);
    } else {
      PutLenField(2, m.value, out);
    }
  }
}

}  // namespace pgbranch::pagefs
