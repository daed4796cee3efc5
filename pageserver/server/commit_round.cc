#include "pageserver/server/commit_round.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/coding.h"
#include "common/proto_wire.h"

namespace pgbranch::pageserver {

bool CommitRound::Accepts(uint64_t generation, uint64_t bytes) const {
  if (requests_.empty()) return true;
  return requests_.size() < kMaxRequests && generation == requests_[0].generation &&
         bytes_ + bytes <= kMaxBytes;
}

void CommitRound::Add(v1::CommitRequest req, uint64_t bytes) {
  const v1::CommitRequest& r = owned_.emplace_back(std::move(req));
  CommitRequestView view;
  view.tenant_id = r.tenant_id();
  view.timeline_id = r.timeline_id();
  view.generation = r.generation();
  view.begin = mutations_.size();
  for (const v1::Mutation& m : r.mutations()) {
    mutations_.push_back({m.key(), m.value(), m.tombstone()});
  }
  view.end = mutations_.size();
  bytes_ += bytes;
  requests_.push_back(view);
}

void CommitRound::Add(const CommitRequestView& req, uint64_t bytes) {
  bytes_ += bytes;
  requests_.push_back(req);
}

void CommitRound::Clear() {
  owned_.clear();
  requests_.clear();
  mutations_.clear();
  bytes_ = 0;
}

absl::Status CommitRound::Commit(storage::Engine* engine, const std::string& tenant,
                                 const std::string& timeline, std::string_view what,
                                 std::vector<storage::CommitResult>* results) {
  ends_.clear();
  absl::Status mismatch;
  for (const CommitRequestView& r : requests_) {
    if (r.tenant_id != tenant || r.timeline_id != timeline) {
      // Commit the requests before it, then fail with this one.
      mismatch = absl::InvalidArgumentError(absl::StrCat(
          "a ", std::string(what), " serves one timeline (", tenant, "/", timeline,
          "); this request names ", std::string(r.tenant_id), "/", std::string(r.timeline_id)));
      break;
    }
    ends_.push_back(r.end);
  }
  results->clear();
  absl::Status s;
  if (!ends_.empty()) {
    s = engine->CommitSequence(tenant, timeline, requests_[0].generation, mutations_, &ends_,
                               results);
  }
  return s.ok() ? mismatch : s;
}

v1::CommitResponse CommitRound::Answer(const storage::CommitResult& r) {
  v1::CommitResponse resp;
  resp.set_lsn(r.lsn);
  resp.set_commit_time_micros(r.time_micros);
  return resp;
}

v1::CommitResponse CommitRound::ErrorAnswer(absl::StatusCode code, std::string message) {
  v1::CommitResponse resp;
  resp.set_error_code(static_cast<int>(code));
  resp.set_error_message(std::move(message));
  return resp;
}

// CommitResponse {lsn = 1, commit_time_micros = 2 (int64), error_code = 3 (int32),
// error_message = 4}. Proto3 writes no zero and no empty string; a negative int32 or int64 is
// the 10-byte varint of its 64-bit two's complement.
void CommitRound::AppendAnswerFrame(const storage::CommitResult& r, std::string* out) {
  const uint64_t time = static_cast<uint64_t>(r.time_micros);
  size_t size = 0;
  if (r.lsn != 0) size += 1 + VarintLength(r.lsn);
  if (time != 0) size += 1 + VarintLength(time);
  PutFixed32(out, static_cast<uint32_t>(size));  // the frame's length (frame_io.h)
  if (r.lsn != 0) PutProtoVarintField(out, 1, r.lsn);
  if (time != 0) PutProtoVarintField(out, 2, time);
}

void CommitRound::AppendErrorAnswerFrame(absl::StatusCode code, std::string_view message,
                                         std::string* out) {
  const uint64_t c = static_cast<uint64_t>(static_cast<int64_t>(static_cast<int>(code)));
  size_t size = 0;
  if (c != 0) size += 1 + VarintLength(c);
  if (!message.empty()) size += ProtoLenFieldSize(message.size());
  PutFixed32(out, static_cast<uint32_t>(size));
  if (c != 0) PutProtoVarintField(out, 3, c);
  if (!message.empty()) PutProtoLenField(out, 4, message);
}

}  // namespace pgbranch::pageserver
