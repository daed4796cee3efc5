#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

// What `branch promote` applies to the parent: the statements in order, each marked whether it
// can run inside the migration's transaction. No I/O (the operator's Promotion reuses it).
namespace pgbranch::cli {

// One row of a branch's DDL capture (compute/ddl_capture.h): a statement as the client sent it.
struct CapturedStatement {
  int64_t id = 0;
  std::string command_tag;  // CREATE TABLE, ALTER TABLE, ...
  std::string query;        // current_query(): may hold several statements, or a DO block
};

struct MigrationStatement {
  std::string sql;
  // False: PostgreSQL refuses it in a transaction block (CREATE INDEX CONCURRENTLY, ...); it
  // runs after the transaction commits, on its own.
  bool transactional = true;
};

struct MigrationPlan {
  std::string source;  // "captured DDL of branch dev" | "file migration.sql"
  std::vector<MigrationStatement> statements;
  // The source's own BEGIN/COMMIT, left out (the plan runs in one transaction of its own).
  std::vector<std::string> ignored;

  size_t TransactionalCount() const;
};

// From the branch's captured statements, in capture order. A captured query string with several
// statements is split, so a non-transactional one among them is told apart.
absl::StatusOr<MigrationPlan> PlanFromCapture(const std::string& branch,
                                              const std::vector<CapturedStatement>& captured);
// From a migration script (its statements in file order).
absl::StatusOr<MigrationPlan> PlanFromScript(const std::string& name, const std::string& sql);

}  // namespace pgbranch::cli
