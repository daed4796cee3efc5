#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "pageserver/storage/types.h"

namespace pgbranch::pageserver {

// A v1::CommitRequest read in place: views into the serialized bytes it was parsed from (a
// commit channel frame still held in the connection's receive buffer). Its mutations are
// mutations[begin, end) of the vector ParseCommitRequest appended them to.
struct CommitRequestView {
  std::string_view tenant_id;
  std::string_view timeline_id;
  uint64_t generation = 0;
  size_t begin = 0;
  size_t end = 0;
};

// Parses a serialized v1::CommitRequest as protobuf would (fields in any order, the last of a
// repeated singular field wins, unknown fields skipped, string fields valid UTF-8), appending
// its mutations to `*mutations`. False if protobuf would refuse it, and then `*mutations` is as
// it was. (One difference: a request holding a group -- a deprecated wire type no
// pgbranch client writes -- is refused rather than skipped.)
bool ParseCommitRequest(std::string_view bytes, CommitRequestView* request,
                        std::vector<storage::MutationView>* mutations);

}  // namespace pgbranch::pageserver
