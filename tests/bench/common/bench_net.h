#pragma once

#include <string>

#include "absl/status/statusor.h"

// Loopback helpers shared by the benchmark programs.
namespace pgbranch::bench_common {

// A TCP port on 127.0.0.1 that was free a moment ago.
absl::StatusOr<int> FreeLoopbackPort();
// The body of `GET path` from 127.0.0.1:port (HTTP/1.0, 2 s timeout).
absl::StatusOr<std::string> HttpGet(int port, const std::string& path);
// The value of the first sample of metric `name` (whose labels contain `labels`, if given) in a
// Prometheus text exposition; -1 if absent.
double MetricValue(const std::string& text, const std::string& name,
                   const std::string& labels = "");

}  // namespace pgbranch::bench_common
