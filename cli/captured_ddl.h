#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cli/migration_plan.h"
#include "cli/sql_session.h"

// Reads a branch's DDL capture (compute/ddl_capture.h) through a SQL session: what `branch
// promote` and the operator's Promotion turn into a MigrationPlan.
namespace pgbranch::cli {

// The statements captured on `timeline` itself (not those inherited with its parent's data), in
// capture order. NotFound: the database has no capture (its compute started before pgbranch had
// it); Unavailable: the query failed otherwise. The caller words what the user does next.
absl::StatusOr<std::vector<CapturedStatement>> ReadCapturedDdl(SqlSession& session,
                                                               const std::string& timeline);

}  // namespace pgbranch::cli
