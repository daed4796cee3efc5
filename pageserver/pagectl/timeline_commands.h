#pragma once

#include "absl/status/status.h"
#include "pageserver/pagectl/command_context.h"

namespace pgbranch::pagectl {

// `pagectl timeline create|list|info|delete|reset|retention ...`; ctx.args' positional words
// start with "timeline VERB".
absl::Status RunTimelineCommand(const CommandContext& ctx);

}  // namespace pgbranch::pagectl
