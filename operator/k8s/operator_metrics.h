#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

// The operator's Prometheus metrics, declared in one place (STYLE.md: bounded labels only —
// kind, result, phase; never an object name).
namespace pgbranch::k8s {

class OperatorMetrics {
 public:
  OperatorMetrics();

  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }

  // One reconcile of `kind` ("branch" | "endpoint") that ended with `ok`.
  void Reconciled(const std::string& kind, bool ok, double seconds);
  void SetQueueDepth(double depth);
  // Objects by phase, recomputed from the caches every few seconds.
  void SetPhaseCount(const std::string& kind, const std::string& phase, double n);
  void SetLeader(bool leader);
  // Time from a wake request (the proxy's annotation) to the compute accepting connections.
  void ObserveWake(double seconds);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& reconciles_;
  prometheus::Family<prometheus::Histogram>& reconcile_seconds_;
  prometheus::Gauge& queue_depth_;
  prometheus::Family<prometheus::Gauge>& objects_;
  prometheus::Gauge& leader_;
  prometheus::Histogram& wake_seconds_;
};

}  // namespace pgbranch::k8s
