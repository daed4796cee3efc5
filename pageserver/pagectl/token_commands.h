#pragma once

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "pageserver/pagectl/command_context.h"

namespace pgbranch::pagectl {

// `pagectl token mint --signing-key-file F --scope admin|tenant [--tenant T] [--timeline X]
// [--ttl D]`: prints a signed pageserver token (common/token_signer.h) on stdout. Needs no
// pageserver: whoever holds the key mints. `now` is when the TTL starts.
absl::Status RunTokenCommand(const CommandContext& ctx, const std::string& verb,
                             absl::Time now = absl::Now());

}  // namespace pgbranch::pagectl
