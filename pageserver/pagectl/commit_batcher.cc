#include "pageserver/pagectl/commit_batcher.h"

#include <utility>

namespace pgbranch::pagectl {

CommitBatcher::CommitBatcher(const Client* client, std::string tenant_id, std::string timeline_id,
                             uint64_t generation, size_t max_bytes)
    : client_(client), max_bytes_(max_bytes) {
  pending_.set_tenant_id(std::move(tenant_id));
  pending_.set_timeline_id(std::move(timeline_id));
  pending_.set_generation(generation);
}

// An upper bound on the mutation's size on the wire: the bytes plus tags and length varints.
size_t CommitBatcher::Cost(const std::string& key, const std::string& value) {
  return key.size() + value.size() + 16;
}

absl::Status CommitBatcher::Put(std::string key, std::string value) {
  size_t cost = Cost(key, value);
  if (pending_bytes_ > 0 && pending_bytes_ + cost > max_bytes_) {
    absl::Status status = Flush();
    if (!status.ok()) return status;
  }
  v1::Mutation* m = pending_.add_mutations();
  m->set_key(std::move(key));
  m->set_value(std::move(value));
  pending_bytes_ += cost;
  return absl::OkStatus();
}

absl::Status CommitBatcher::Flush() {
  if (pending_.mutations_size() == 0) return absl::OkStatus();
  v1::CommitResponse response;
  absl::Status status = client_->Call(&v1::PageService::StubInterface::Commit, pending_, &response);
  if (!status.ok()) return status;
  last_lsn_ = response.lsn();
  ++commits_;
  pending_.clear_mutations();
  pending_bytes_ = 0;
  return absl::OkStatus();
}

}  // namespace pgbranch::pagectl
