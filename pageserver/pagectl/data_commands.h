#pragma once

#include "absl/status/status.h"
#include "pageserver/pagectl/command_context.h"

namespace pgbranch::pagectl {

// `pagectl import --tenant T --timeline X DIR`
absl::Status RunImportCommand(const CommandContext& ctx);
// `pagectl export --tenant T --timeline X [--lsn L] DIR`
absl::Status RunExportCommand(const CommandContext& ctx);

}  // namespace pgbranch::pagectl
