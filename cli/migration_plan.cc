#include "cli/migration_plan.h"

#include "absl/strings/str_cat.h"
#include "cli/sql_script.h"

namespace pgbranch::cli {
namespace {

absl::Status AddStatements(const std::string& sql, MigrationPlan* plan) {
  absl::StatusOr<std::vector<std::string>> statements = SplitSqlStatements(sql);
  if (!statements.ok()) return statements.status();
  for (std::string& s : *statements) {
    if (IsTransactionControl(s)) {
      plan->ignored.push_back(std::move(s));
      continue;
    }
    const bool tx = !IsNonTransactional(s);
    plan->statements.push_back({std::move(s), tx});
  }
  return absl::OkStatus();
}

}  // namespace

size_t MigrationPlan::TransactionalCount() const {
  size_t n = 0;
  for (const auto& s : statements) n += s.transactional ? 1 : 0;
  return n;
}

absl::StatusOr<MigrationPlan> PlanFromCapture(const std::string& branch,
                                              const std::vector<CapturedStatement>& captured) {
  MigrationPlan plan;
  plan.source = absl::StrCat("captured DDL of branch ", branch);
  for (const CapturedStatement& c : captured) {
    absl::Status s = AddStatements(c.query, &plan);
    if (!s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("captured statement ", c.id, " (", c.command_tag, "): ", s.message()));
    }
  }
  return plan;
}

absl::StatusOr<MigrationPlan> PlanFromScript(const std::string& name, const std::string& sql) {
  MigrationPlan plan;
  plan.source = absl::StrCat("file ", name);
  absl::Status s = AddStatements(sql, &plan);
  if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat(name, ": ", s.message()));
  return plan;
}

}  // namespace pgbranch::cli
