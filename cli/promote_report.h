#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "cli/check_runner.h"
#include "cli/migration_applier.h"
#include "cli/schema_objects.h"
#include "common/cpprest.h"

// What `branch promote` prints: the readable report and the -o json document of a rehearsal and
// of the apply on the parent.
namespace pgbranch::cli {

// How long a rehearsal branch may outlive a CLI killed before it could delete it.
inline constexpr char kRehearsalTtl[] = "1h";

// What a rehearsal did, on its throwaway branch.
struct Rehearsal {
  std::string branch;
  ApplyReport apply;
  std::vector<CheckResult> checks;
  std::vector<SchemaChange> result_diff;  // rehearsal result (theirs) against the branch (ours)
  std::string result_diff_error;
  absl::Status deleted;

  bool ok() const {
    if (!apply.complete) return false;
    for (const auto& c : checks) {
      if (!c.passed) return false;
    }
    return true;
  }
};

// A statement on one line (whitespace collapsed, leading comments dropped, cut at 110).
std::string OneLine(const std::string& sql);
std::string Millis(absl::Duration d);

web::json::value ApplyJson(const ApplyReport& apply);
void PrintApply(const ApplyReport& apply);
web::json::value RehearsalJson(const Rehearsal& rehearsal);
void PrintRehearsal(const Rehearsal& rehearsal, const std::string& branch);
// The error of a failed rehearsal: the failing statement and its error, or the failed checks.
std::string RehearsalFailure(const Rehearsal& rehearsal, const std::string& parent);

}  // namespace pgbranch::cli
