#pragma once

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "pageserver/storage/types.h"

namespace pgbranch::pageserver {

// Every metric of the pageserver, declared in one place. Names follow
// pgbranch_pageserver_<what>_<unit>; labels are bounded (RPC method and status code).
class ServerMetrics {
 public:
  ServerMetrics();

  // Starts serving /metrics on `address` (host:port).
  absl::Status Expose(const std::string& address);

  void ObserveRequest(const std::string& method, const std::string& code, double seconds);
  // Mirrors the engine's counters and gauges.
  void Refresh(const storage::EngineStats& stats);
  std::shared_ptr<prometheus::Registry> registry() { return registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;

  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& latency_;
  prometheus::Gauge& tenants_;
  prometheus::Gauge& timelines_;
  prometheus::Gauge& layer_files_;
  prometheus::Gauge& layer_bytes_;
  prometheus::Gauge& memtable_bytes_;
  prometheus::Counter& commits_;
  prometheus::Counter& commit_groups_;
  prometheus::Counter& bytes_committed_;
  prometheus::Counter& checkpoints_;
  prometheus::Counter& compactions_;
  prometheus::Counter& gc_runs_;
  prometheus::Counter& gc_dropped_;

  std::mutex mu_;
  storage::EngineStats last_;  // guarded by mu_
};

}  // namespace pgbranch::pageserver
