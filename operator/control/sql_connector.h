#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "cli/sql_session.h"

// Opens a database session on an Endpoint's running compute, as the operator reaches it: the
// Promotion reconciler reads a branch's captured DDL and applies migrations through it.
// operator/k8s/pod_sql_connector.h connects to the compute pod with the endpoint's credentials;
// unit tests hand out fake sessions.
namespace pgbranch::control {

class SqlConnector {
 public:
  virtual ~SqlConnector() = default;
  // UNAVAILABLE when the compute is not serving (yet).
  virtual absl::StatusOr<std::unique_ptr<cli::SqlSession>> Connect(const std::string& ns,
                                                                   const std::string& endpoint) = 0;
};

}  // namespace pgbranch::control
