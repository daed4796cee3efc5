#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pageserver/storage/log_batch.h"
#include "pageserver/storage/types.h"

namespace pgbranch::storage {

// Appends to `batch` the log record of one commit: the bytes protobuf serialises for
// pb::LogRecord{commit: pb::Commit{...}} (fields in field-number order, as the serialiser writes
// them; replay parses them with protobuf). Encoded by hand so that no value is copied on its way
// to the log but into the batch (a small one) or not at all (a large one, referenced), and never
// checksummed again: the payload checksum takes `crcs[i]`, the Crc32 of each mutation's value (0
// for a deletion). The values must stay valid until the batch is written.
void AppendCommitRecord(std::string_view tenant_id, std::string_view timeline_id, uint64_t lsn,
                        int64_t time_micros, const MutationView* mutations, size_t n,
                        const uint32_t* crcs, LogBatch* batch);

// The same record as one frame: kHeaderSize bytes of room, then the payload; `*payload_crc` is
// Crc32 of the payload (init 0). For LogWriter::AddFramedRecord(framed, payload_crc), and for
// tests that compare the two encodings with protobuf's.
std::string FrameCommitRecord(const std::string& tenant_id, const std::string& timeline_id,
                              uint64_t lsn, int64_t time_micros,
                              const std::vector<Mutation>& mutations,
                              const std::vector<uint32_t>& crcs, uint32_t* payload_crc);

}  // namespace pgbranch::storage
