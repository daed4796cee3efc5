#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "cli/cli_context.h"

// `pgbranch branch schema-diff NAME [--against OTHER] [--two-way] [--exit-code]`.
namespace pgbranch::cli {

struct SchemaDiffOptions {
  std::string branch;
  // Empty: the branch's parent, three-way through the branch point (what changed on the
  // branch, what changed on the parent since — drift — and conflicts). Set: two-way against
  // that branch's current schema.
  std::string against;
  bool two_way = false;    // against the parent, but two-way (the parent's current schema only)
  bool exit_code = false;  // differences make the command exit 1 (CI gates on it)
};

// Prints the comparison (-o json: one document); returns whether there were differences.
absl::StatusOr<bool> SchemaDiff(const CliContext& ctx, const SchemaDiffOptions& options);

}  // namespace pgbranch::cli
