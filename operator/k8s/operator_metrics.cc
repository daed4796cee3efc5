#include "operator/k8s/operator_metrics.h"

namespace pgbranch::k8s {

OperatorMetrics::OperatorMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      reconciles_(prometheus::BuildCounter()
                      .Name("pgbranch_operator_reconciles_total")
                      .Help("Reconcile passes by kind and result (ok, error)")
                      .Register(*registry_)),
      reconcile_seconds_(prometheus::BuildHistogram()
                             .Name("pgbranch_operator_reconcile_duration_seconds")
                             .Help("Duration of one reconcile pass by kind")
                             .Register(*registry_)),
      queue_depth_(prometheus::BuildGauge()
                       .Name("pgbranch_operator_queue_depth")
                       .Help("Keys ready in the work queue")
                       .Register(*registry_)
                       .Add({})),
      objects_(prometheus::BuildGauge()
                   .Name("pgbranch_operator_objects")
                   .Help("Branches and endpoints by phase")
                   .Register(*registry_)),
      leader_(prometheus::BuildGauge()
                  .Name("pgbranch_operator_leader")
                  .Help("1 while this replica holds the leader Lease")
                  .Register(*registry_)
                  .Add({})),
      wake_seconds_(prometheus::BuildHistogram()
                        .Name("pgbranch_operator_wake_duration_seconds")
                        .Help("From a wake request to the compute pod being ready")
                        .Register(*registry_)
                        .Add({}, prometheus::Histogram::BucketBoundaries{
                                     0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60})) {}

void OperatorMetrics::Reconciled(const std::string& kind, bool ok, double seconds) {
  reconciles_.Add({{"kind", kind}, {"result", ok ? "ok" : "error"}}).Increment();
  reconcile_seconds_
      .Add({{"kind", kind}},
           prometheus::Histogram::BucketBoundaries{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                   1, 2.5, 5, 10})
      .Observe(seconds);
}

void OperatorMetrics::SetQueueDepth(double depth) { queue_depth_.Set(depth); }

void OperatorMetrics::SetPhaseCount(const std::string& kind, const std::string& phase, double n) {
  objects_.Add({{"kind", kind}, {"phase", phase.empty() ? "Unknown" : phase}}).Set(n);
}

void OperatorMetrics::SetLeader(bool leader) { leader_.Set(leader ? 1 : 0); }

void OperatorMetrics::ObserveWake(double seconds) { wake_seconds_.Observe(seconds); }

}  // namespace pgbranch::k8s
