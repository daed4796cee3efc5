#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "pageserver/pagectl/client.h"

// Groups mutations into Commit RPCs of bounded size under one writer generation. Each commit is
// atomic on its own; a sequence of them is not, so callers that write a whole structure write its
// "commit point" (the superblock) last.
namespace pgbranch::pagectl {

class CommitBatcher {
 public:
  // The default bound keeps a CommitRequest under gRPC's default 4 MiB message limit.
  static constexpr size_t kDefaultMaxBytes = (4 << 20) - (64 << 10);

  CommitBatcher(const Client* client, std::string tenant_id, std::string timeline_id,
                uint64_t generation, size_t max_bytes = kDefaultMaxBytes);

  // Adds a mutation, first committing what is pending if the mutation would not fit.
  absl::Status Put(std::string key, std::string value);
  // Commits what is pending, if anything.
  absl::Status Flush();

  uint64_t last_lsn() const { return last_lsn_; }
  uint64_t commits() const { return commits_; }

 private:
  static size_t Cost(const std::string& key, const std::string& value);

  const Client* client_;
  size_t max_bytes_;
  v1::CommitRequest pending_;
  size_t pending_bytes_ = 0;
  uint64_t last_lsn_ = 0;
  uint64_t commits_ = 0;
};

}  // namespace pgbranch::pagectl
