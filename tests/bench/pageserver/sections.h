#pragma once

#include "absl/status/status.h"
#include "tests/bench/pageserver/bench_util.h"

// The sections of pageserver-bench. Each starts its own pageserver on a fresh data directory,
// prints its table and returns an error only if it could not measure.
namespace pgbranch::bench {

// 1. CreateTimeline latency at the parent's head, with a small and a large parent.
absl::Status RunBranchBench(const BenchConfig& config);
// 2. Point reads at branch depth 1 and 50, over gRPC and in-process against storage::Engine.
absl::Status RunReadBench(const BenchConfig& config);
// 3. Commit latency and throughput of 8 KiB pages by batch size and concurrency.
absl::Status RunCommitBench(const BenchConfig& config);
// 4. Disk bytes a branch adds when X MB are written on it.
absl::Status RunSpaceBench(const BenchConfig& config);
// 5. Bulk commits over the commit channel: throughput, and the latency of a small commit behind.
absl::Status RunChannelBench(const BenchConfig& config);
// 6. The pageserver's CPU per small commit over the commit channel (pipelined, one connection).
absl::Status RunCommitCpuBench(const BenchConfig& config);

}  // namespace pgbranch::bench
