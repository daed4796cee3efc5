#pragma once

#include <string>

#include "absl/status/status.h"
#include "pageserver/pagectl/command_context.h"

namespace pgbranch::pagectl {

// `pagectl tenant create|list|delete ...`.
absl::Status RunTenantCommand(const CommandContext& ctx, const std::string& verb);

}  // namespace pgbranch::pagectl
