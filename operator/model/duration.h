#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace pgbranch::control {

// Parses a Kubernetes-style duration: a sequence of <number><unit> with units d, h, m, s, ms
// ("1h30m", "90s", "7d", "250ms"). Fractions are allowed ("1.5h"). Negative durations are not.
absl::StatusOr<absl::Duration> ParseDuration(std::string_view text);
// The shortest such spelling of `d` ("1h30m", "0s").
std::string DurationToString(absl::Duration d);

}  // namespace pgbranch::control
