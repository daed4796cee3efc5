#pragma once

#include "absl/status/status.h"
#include "cli/cli_context.h"
#include "pageserver/pagectl/args.h"

// `pgbranch local up|down|status` and the hidden `pgbranch local controller` (the controller
// process that `local up` starts).
namespace pgbranch::cli {

absl::Status RunLocalCommand(const CliContext& ctx, pagectl::Args& args);

}  // namespace pgbranch::cli
