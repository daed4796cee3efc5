#pragma once

#include "absl/status/status.h"
#include "tests/bench/pagefs/pagefs_bench_util.h"

// The sections of pagefs-bench. Each starts its own pageserver on a fresh scratch directory,
// prints its table and returns an error only if it could not measure.
namespace pgbranch::pagefs_bench {

// 1. pgbench TPS on pagefs versus the same PostgreSQL configuration on the local disk.
absl::Status RunPgbenchBench(const BenchConfig& config);
// 2. New branch to first query: CreateTimeline + pagefs mount + PostgreSQL start + SELECT 1.
absl::Status RunBranchBench(const BenchConfig& config);
// 3. initdb (with fsync) on pagefs versus the local disk.
absl::Status RunInitdbBench(const BenchConfig& config);
// 4. Crash recovery: restart after kill -9 with X MiB of WAL to replay, pagefs vs local disk.
absl::Status RunRecoveryBench(const BenchConfig& config);
// 5. Cold point reads (fresh mount) at branch depth 1, 8 and 32.
absl::Status RunColdReadBench(const BenchConfig& config);
// 6. Namespace operations (create, truncate to 0, rename, unlink): mean and p99
// (namespace_bench.cc).
absl::Status RunNamespaceBench(const BenchConfig& config);
// 7. CHECKPOINT after dropping N one-row tables; a DDL-heavy script; single-row write latency
// (sql_bench.cc).
absl::Status RunDropTablesBench(const BenchConfig& config);
absl::Status RunDdlBench(const BenchConfig& config);
absl::Status RunWriteLatencyBench(const BenchConfig& config);

}  // namespace pgbranch::pagefs_bench
