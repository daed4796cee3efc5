#pragma once

#include "absl/status/status.h"
#include "pageserver/pagectl/command_context.h"

namespace pgbranch::pagectl {

// `pagectl lsn-at --tenant T --timeline X TIMESTAMP`: the LSN that was the head at that time.
absl::Status RunLsnAtCommand(const CommandContext& ctx);
// `pagectl maintenance [--gc]`: a checkpoint (and GC) now.
absl::Status RunMaintenanceCommand(const CommandContext& ctx);

}  // namespace pgbranch::pagectl
