#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pageserver/storage/types.h"

namespace pgbranch::storage {

// The log frame of one commit: the bytes protobuf serialises for
// pb::LogRecord{commit: pb::Commit{...}} (fields in field-number order, as the serialiser writes
// them; replay parses them with protobuf), behind LogWriter::kHeaderSize bytes of room for the
// frame header. Encoded by hand so that each value is copied once -- into the frame -- and never
// checksummed again: `*payload_crc` (Crc32 of the payload, init 0) is assembled from `crcs`, the
// Crc32 of each mutation's value (0 for a deletion), with Crc32Combine. For
// LogWriter::AddFramedRecord(framed, payload_crc).
std::string FrameCommitRecord(const std::string& tenant_id, const std::string& timeline_id,
                              uint64_t lsn, int64_t time_micros,
                              const std::vector<Mutation>& mutations,
                              const std::vector<uint32_t>& crcs, uint32_t* payload_crc);

}  // namespace pgbranch::storage
