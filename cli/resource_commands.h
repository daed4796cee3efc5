#pragma once

#include "absl/status/status.h"
#include "cli/cli_context.h"
#include "pageserver/pagectl/args.h"

// The day-to-day commands: `apply -f`, `branch ...`, `endpoint ...`, `connstr`, and the hidden
// `debug advance-clock` of the test clock.
namespace pgbranch::cli {

absl::Status RunApply(const CliContext& ctx, pagectl::Args& args);
absl::Status RunBranchCommand(const CliContext& ctx, pagectl::Args& args);
absl::Status RunEndpointCommand(const CliContext& ctx, pagectl::Args& args);
absl::Status RunConnstr(const CliContext& ctx, pagectl::Args& args);
absl::Status RunDebugCommand(const CliContext& ctx, pagectl::Args& args);

// `branch schema-diff` (schema_diff.cc).
absl::Status RunSchemaDiff(const CliContext& ctx, pagectl::Args& args);

}  // namespace pgbranch::cli
