#include "pageserver/pagefs/pagefs_metrics.h"

#include <prometheus/text_serializer.h>

#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/metrics_util.h"

namespace pgbranch::pagefs {

PageFsMetrics::PageFsMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      ops_(prometheus::BuildCounter()
               .Name("pgbranch_pagefs_operations_total")
               .Help("Filesystem operations by kind and result")
               .Register(*registry_)),
      latency_(prometheus::BuildHistogram()
                   .Name("pgbranch_pagefs_operation_duration_seconds")
                   .Help("Filesystem operation latency by kind, from the request's arrival to "
                         "pagefs's reply (fsync: until the commit is durable)")
                   .Register(*registry_)),
      commit_latency_(
          prometheus::BuildHistogram()
              .Name("pgbranch_pagefs_commit_duration_seconds")
              .Help(
                  "Time to issue a pipelined commit to the pageserver (fsync waits for durability)")
              .Register(*registry_)
              .Add({}, prometheus::Histogram::BucketBoundaries{0.0001, 0.00025, 0.0005, 0.001,
                                                               0.0025, 0.005, 0.01, 0.025, 0.05,
                                                               0.1, 0.25, 1})),
      store_rpc_latency_(prometheus::BuildHistogram()
                             .Name("pgbranch_pagefs_store_rpc_duration_seconds")
                             .Help("Latency of the read RPCs to the pageserver by kind")
                             .Register(*registry_)),
      store_keys_(prometheus::BuildCounter()
                      .Name("pgbranch_pagefs_store_read_keys_total")
                      .Help("Keys asked for (read) or returned (scan) by read RPCs, by kind")
                      .Register(*registry_)),
      read_request_bytes_(
          prometheus::BuildHistogram()
              .Name("pgbranch_pagefs_read_request_bytes")
              .Help("Sizes of the reads the kernel sends (read-ahead makes them large)")
              .Register(*registry_)
              .Add({}, prometheus::Histogram::BucketBoundaries{4096, 8192, 16384, 32768, 65536,
                                                               131072, 262144, 524288, 1048576})),
      cache_hit_ratio_(MakeGauge(*registry_, "pgbranch_pagefs_cache_hit_ratio",
                                 "Hits / lookups of the local page cache")),
      dirty_bytes_(
          MakeGauge(*registry_, "pgbranch_pagefs_dirty_bytes", "Buffered bytes not yet committed")),
      fenced_(MakeGauge(*registry_, "pgbranch_pagefs_fenced",
                        "1 once another writer took the timeline")),
      commits_(MakeCounter(*registry_, "pgbranch_pagefs_commits_total",
                           "Batches committed to the pageserver")),
      bytes_committed_(MakeCounter(*registry_, "pgbranch_pagefs_committed_bytes_total",
                                   "Bytes committed to the pageserver")),
      readahead_pages_(MakeCounter(*registry_, "pgbranch_pagefs_readahead_pages_total",
                                   "Pages fetched ahead of sequential reads into the page cache")) {
}

absl::Status PageFsMetrics::Expose(const std::string& address) {
  return ServeMetrics(address, registry_, &exposer_);
}

PageFsMetrics::OpMetrics PageFsMetrics::OpMetricsFor(const char* op) {
  {
    absl::ReaderMutexLock l(&op_mu_);
    auto it = op_metrics_.find(op);
    if (it != op_metrics_.end()) return it->second;  // a copy: an insertion may move entries
  }
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1};
  absl::MutexLock l(&op_mu_);
  auto [it, inserted] = op_metrics_.try_emplace(op);
  if (inserted) {
    it->second = {&ops_.Add({{"op", op}, {"result", "ok"}}), &latency_.Add({{"op", op}}, kBuckets)};
  }
  return it->second;
}

void PageFsMetrics::ObserveOp(const char* op, double seconds, int err) {
  const OpMetrics m = OpMetricsFor(op);
  // The error counter is made on the first error only (as before: no zero error series).
  if (err == 0) {
    m.ok->Increment();
  } else {
    ops_.Add({{"op", op}, {"result", "error"}}).Increment();
  }
  m.latency->Observe(seconds);
}

void PageFsMetrics::ObserveStoreRead(const char* rpc, double seconds, size_t keys) {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1};
  store_rpc_latency_.Add({{"rpc", rpc}}, kBuckets).Observe(seconds);
  store_keys_.Add({{"rpc", rpc}}).Increment(static_cast<double>(keys));
}

void PageFsMetrics::Refresh(const PageFsStats& s) {
  uint64_t lookups = s.cache_hits + s.cache_misses;
  cache_hit_ratio_.Set(lookups ? static_cast<double>(s.cache_hits) / lookups : 0);
  dirty_bytes_.Set(static_cast<double>(s.dirty_bytes));
  fenced_.Set(s.fenced ? 1 : 0);
  if (s.commits > last_.commits) commits_.Increment(static_cast<double>(s.commits - last_.commits));
  if (s.bytes_committed > last_.bytes_committed) {
    bytes_committed_.Increment(static_cast<double>(s.bytes_committed - last_.bytes_committed));
  }
  if (s.readahead_pages > last_.readahead_pages) {
    readahead_pages_.Increment(static_cast<double>(s.readahead_pages - last_.readahead_pages));
  }
  last_ = s;
}

std::string PageFsMetrics::Text() {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

}  // namespace pgbranch::pagefs
