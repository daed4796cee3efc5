#pragma once

#include "absl/status/status.h"
#include "tests/bench/pagefs/pagefs_bench_util.h"

// Sections of local-bench that live in their own files (the first three are in local_bench.cc).
namespace pgbranch::local_bench {

// depth: new branch → first query through the proxy at depth 1, 8 and 32, waiting and with
// --wait=false, and where the time goes.
absl::Status RunFirstQuery(const pagefs_bench::BenchConfig& config);
// write: single-row INSERT/UPDATE latency through the proxy, direct, and on the local disk.
absl::Status RunWriteLatency(const pagefs_bench::BenchConfig& config);
// promote: `pgbranch branch promote` of a migration with a backfill into a parent of ~1 GB
// (rehearsal, restore point, apply, the restore point's storage) versus by hand on the local disk.
absl::Status RunPromote(const pagefs_bench::BenchConfig& config);

}  // namespace pgbranch::local_bench
