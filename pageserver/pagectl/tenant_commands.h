#pragma once

#include <string>

#include "absl/status/status.h"
#include "pageserver/pagectl/command_context.h"

namespace pgbranch::pagectl {

// `pagectl tenant create|list|delete ...`; ctx.args' positional words start with "tenant VERB".
absl::Status RunTenantCommand(const CommandContext& ctx);

}  // namespace pgbranch::pagectl
