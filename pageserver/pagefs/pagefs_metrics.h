#pragma once

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "pageserver/pagefs/pagefs.h"

namespace pgbranch::pagefs {

// Every metric of pagefs, declared in one place: pgbranch_pagefs_<what>_<unit>, labelled by
// operation only.
class PageFsMetrics {
 public:
  PageFsMetrics();
  absl::Status Expose(const std::string& address);
  void ObserveOp(const char* op, double seconds, int err);
  void ObserveCommit(double seconds) { commit_latency_.Observe(seconds); }
  // A Read or Scan RPC to the pageserver ("read", "scan", "scan_keys") and its keys.
  void ObserveStoreRead(const char* rpc, double seconds, size_t keys);
  // The size of one read the kernel asked for (read-ahead makes them large).
  void ObserveReadRequest(size_t bytes) { read_request_bytes_.Observe(static_cast<double>(bytes)); }
  void Refresh(const PageFsStats& stats);
  // Every metric in Prometheus's text format (what --metrics-listen serves).
  std::string Text();

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  prometheus::Family<prometheus::Counter>& ops_;
  prometheus::Family<prometheus::Histogram>& latency_;
  prometheus::Histogram& commit_latency_;
  prometheus::Family<prometheus::Histogram>& store_rpc_latency_;
  prometheus::Family<prometheus::Counter>& store_keys_;
  prometheus::Histogram& read_request_bytes_;
  prometheus::Gauge& cache_hit_ratio_;
  prometheus::Gauge& dirty_bytes_;
  prometheus::Gauge& fenced_;
  prometheus::Counter& commits_;
  prometheus::Counter& bytes_committed_;
  prometheus::Counter& readahead_pages_;
  PageFsStats last_;  // Refresh is called from one thread

  // The metrics of one operation. Family::Add builds and hashes a label map (allocations) and
  // takes the family's lock on every call: done once per operation name instead of per request.
  struct OpMetrics {
    prometheus::Counter* ok;
    prometheus::Histogram* latency;
  };
  OpMetrics OpMetricsFor(const char* op);
  absl::Mutex op_mu_;
  // Keyed by the name's address (a string literal at every call site; two addresses of one name
  // share the same metrics, as Family::Add returns the same child for equal labels).
  absl::flat_hash_map<const char*, OpMetrics> op_metrics_ ABSL_GUARDED_BY(op_mu_);
};

}  // namespace pgbranch::pagefs
