#include "pageserver/server/server_metrics.h"

#include "absl/strings/str_cat.h"
#include "common/metrics_util.h"

namespace pgbranch::pageserver {
namespace {}  // namespace

ServerMetrics::ServerMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      requests_(prometheus::BuildCounter()
                    .Name("pgbranch_pageserver_requests_total")
                    .Help("gRPC requests by method and status code")
                    .Register(*registry_)),
      latency_(prometheus::BuildHistogram()
                   .Name("pgbranch_pageserver_request_duration_seconds")
                   .Help("gRPC request latency by method")
                   .Register(*registry_)),
      tenants_(MakeGauge(*registry_, "pgbranch_pageserver_tenants", "Tenants")),
      timelines_(MakeGauge(*registry_, "pgbranch_pageserver_timelines", "Timelines")),
      layer_files_(MakeGauge(*registry_, "pgbranch_pageserver_layer_files", "Layer files")),
      layer_bytes_(
          MakeGauge(*registry_, "pgbranch_pageserver_layer_bytes", "Bytes in layer files")),
      memtable_bytes_(MakeGauge(*registry_, "pgbranch_pageserver_memtable_bytes",
                                "Bytes held in in-memory layers")),
      commits_(MakeCounter(*registry_, "pgbranch_pageserver_commits_total", "Committed batches")),
      commit_groups_(MakeCounter(*registry_, "pgbranch_pageserver_commit_groups_total",
                                 "Log writes (group commits), each followed by one fdatasync")),
      bytes_committed_(MakeCounter(*registry_, "pgbranch_pageserver_committed_bytes_total",
                                   "Key and value bytes committed")),
      checkpoints_(MakeCounter(*registry_, "pgbranch_pageserver_checkpoints_total", "Checkpoints")),
      compactions_(
          MakeCounter(*registry_, "pgbranch_pageserver_compactions_total", "Timeline compactions")),
      gc_runs_(MakeCounter(*registry_, "pgbranch_pageserver_gc_runs_total", "GC runs")),
      gc_dropped_(MakeCounter(*registry_, "pgbranch_pageserver_gc_dropped_versions_total",
                              "Versions dropped by GC")) {}

absl::Status ServerMetrics::Expose(const std::string& address) {
  return ServeMetrics(address, registry_, &exposer_);
}

void ServerMetrics::ObserveRequest(const std::string& method, const std::string& code,
                                   double seconds) {
  requests_.Add({{"method", method}, {"code", code}}).Increment();
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5};
  latency_.Add({{"method", method}}, kBuckets).Observe(seconds);
}

void ServerMetrics::Refresh(const storage::EngineStats& s) {
  std::lock_guard<std::mutex> lock(mu_);
  tenants_.Set(static_cast<double>(s.tenants));
  timelines_.Set(static_cast<double>(s.timelines));
  layer_files_.Set(static_cast<double>(s.layer_files));
  layer_bytes_.Set(static_cast<double>(s.layer_bytes));
  memtable_bytes_.Set(static_cast<double>(s.memtable_bytes));
  auto bump = [](prometheus::Counter& c, uint64_t now, uint64_t before) {
    if (now > before) c.Increment(static_cast<double>(now - before));
  };
  bump(commits_, s.commits, last_.commits);
  bump(commit_groups_, s.commit_groups, last_.commit_groups);
  bump(bytes_committed_, s.bytes_committed, last_.bytes_committed);
  bump(checkpoints_, s.checkpoints, last_.checkpoints);
  bump(compactions_, s.compactions, last_.compactions);
  bump(gc_runs_, s.gc_runs, last_.gc_runs);
  bump(gc_dropped_, s.gc_versions_dropped, last_.gc_versions_dropped);
  last_ = s;
}

}  // namespace pgbranch::pageserver
