#include "pageserver/server/commit_round.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace pgbranch::pageserver {

bool CommitRound::Accepts(const v1::CommitRequest& req, uint64_t bytes) const {
  if (requests_.empty()) return true;
  return requests_.size() < kMaxRequests && req.generation() == requests_[0].generation() &&
         bytes_ + bytes <= kMaxBytes;
}

void CommitRound::Add(v1::CommitRequest req, uint64_t bytes) {
  bytes_ += bytes;
  requests_.push_back(std::move(req));
}

absl::Status CommitRound::Commit(storage::Engine* engine, const std::string& tenant,
                                 const std::string& timeline, std::string_view what,
                                 std::vector<storage::CommitResult>* results) {
  std::vector<std::vector<storage::Mutation>> batches;
  batches.reserve(requests_.size());
  absl::Status mismatch;
  for (v1::CommitRequest& r : requests_) {
    if (r.tenant_id() != tenant || r.timeline_id() != timeline) {
      // Commit the requests before it, then fail with this one.
      mismatch = absl::InvalidArgumentError(
          absl::StrCat("a ", std::string(what), " serves one timeline (", tenant, "/", timeline,
                       "); this request names ", r.tenant_id(), "/", r.timeline_id()));
      break;
    }
    std::vector<storage::Mutation> muts;
    muts.reserve(r.mutations_size());
    for (auto& m : *r.mutable_mutations()) {
      muts.push_back({std::move(*m.mutable_key()), std::move(*m.mutable_value()), m.tombstone()});
    }
    batches.push_back(std::move(muts));
  }
  absl::Status s;
  if (!batches.empty()) {
    s = engine->CommitSequence(tenant, timeline, requests_[0].generation(), &batches, results);
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

}  // namespace pgbranch::pageserver
