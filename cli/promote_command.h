#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "cli/cli_context.h"

// `pgbranch branch promote NAME` and `pgbranch branch restore NAME --to RESTORE_POINT`
// (docs/promotion.md).
namespace pgbranch::cli {

struct PromoteOptions {
  std::string branch;
  bool dry_run = false;
  // Promote this script instead of the DDL captured on the branch.
  std::string file;
  std::vector<std::string> checks;  // --check FILE.sql, in order
  std::string check_command;        // --check-command CMD
  bool allow_protected = false;
  std::string restore_point_ttl = "7d";
  bool keep_restore_point = false;  // protected and kept until deleted, instead of the TTL
};

// Dry run: the three-way schema check, then the rehearsal on a throwaway branch of the parent's
// head (migration, checks, report), which is always deleted again. Otherwise the same, then a
// protected restore point of the parent, then the migration on the parent. Refused (an error,
// nothing changed) when the branch has no parent, nothing to promote, a conflict, a failed
// rehearsal, or a protected parent without allow_protected.
absl::Status BranchPromote(const CliContext& ctx, const PromoteOptions& options);

}  // namespace pgbranch::cli
