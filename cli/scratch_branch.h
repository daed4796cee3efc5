#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "cli/api_client.h"
#include "common/cpprest.h"

// A branch (with a read-write endpoint) that lives as long as this object: the rehearsal of a
// promotion. It carries a TTL too, so that a CLI killed before it could delete it leaves nothing
// for long.
namespace pgbranch::cli {

class ScratchBranch {
 public:
  ScratchBranch(const ApiClient& client, std::string name)
      : client_(client), name_(std::move(name)) {}
  ~ScratchBranch();
  ScratchBranch(const ScratchBranch&) = delete;
  ScratchBranch& operator=(const ScratchBranch&) = delete;

  // Creates it from the head of `parent` and waits until its endpoint runs; returns the endpoint.
  absl::StatusOr<web::json::value> Create(const std::string& parent, const std::string& ttl);
  // Deletes it (with its endpoint) and waits until it is gone; the destructor does it otherwise.
  absl::Status Delete();

  const std::string& name() const { return name_; }

 private:
  const ApiClient& client_;
  const std::string name_;
  bool created_ = false;
};

// "<prefix>-<suffix>" cut to a valid name (63 characters).
std::string DerivedName(const std::string& prefix, const std::string& suffix);

}  // namespace pgbranch::cli
