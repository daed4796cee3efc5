#pragma once

#include "absl/status/status.h"
#include "pageserver/pagectl/command_context.h"

namespace pgbranch::pagectl {

// `pagectl timeline create|list|info|delete|reset|retention ...`.
absl::Status RunTimelineCommand(const CommandContext& ctx, const std::string& verb);

}  // namespace pgbranch::pagectl
