#pragma once

#include <string>

#include "absl/status/status.h"
#include "cli/cli_context.h"

// `pgbranch branch restore PARENT --to RESTORE_POINT` (docs/promotion.md): PARENT's data goes
// back to its restore point's state under the same endpoints and connection strings; PARENT's
// state before is kept as a branch (operator/control/branch_restore.h). Local mode.
namespace pgbranch::cli {

struct RestoreOptions {
  std::string parent;
  std::string to;               // the restore point: a child branch of PARENT, never written to
  std::string keep_current_as;  // default "<parent>-before-restore-YYYYMMDD-HHMMSS"
  bool allow_protected = false;
};

absl::Status BranchRestore(const CliContext& ctx, const RestoreOptions& options);

}  // namespace pgbranch::cli
