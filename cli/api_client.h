#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "common/cpprest.h"

// The CLI's client of the local controller API (docs/local-mode-internals.md). Errors come back
// as statuses whose message is the controller's sentence for a person, with the offending field
// and the bare reason attached (cli/api_errors.h); 409 AlreadyExists is ALREADY_EXISTS, other
// conflicts FAILED_PRECONDITION.
namespace pgbranch::cli {

class ApiClient {
 public:
  explicit ApiClient(std::string base_url) : base_url_(std::move(base_url)) {}

  absl::StatusOr<web::json::value> Get(const std::string& path) const;
  absl::StatusOr<web::json::value> Post(const std::string& path,
                                        const std::string& body = "") const;
  absl::StatusOr<web::json::value> Delete(const std::string& path) const;

 private:
  absl::StatusOr<web::json::value> Call(const std::string& method, const std::string& path,
                                        const std::string& body) const;
  std::string base_url_;
};

}  // namespace pgbranch::cli
