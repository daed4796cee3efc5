#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pgbranch::pagefs {

struct PageMutation;

// Appends to `out` the commit channel frame (common/frame_io.h) of the CommitRequest
// {tenant_id, timeline_id, generation, mutations} -- byte for byte what
// AppendFrame(request.SerializeAsString(), out) makes of the message GrpcPageStore builds for
// the same commit (proto3: empty and zero fields are not written; a tombstone carries no value)
// -- but straight from `mutations`: each page is copied once, into the frame, instead of into
// the message, its serialization and then the frame (three 8 KiB allocations and copies per
// written page on the write path).
void AppendCommitFrame(std::string_view tenant_id, std::string_view timeline_id,
                       uint64_t generation, const std::vector<PageMutation>& mutations,
                       std::string* out);

}  // namespace pgbranch::pagefs
