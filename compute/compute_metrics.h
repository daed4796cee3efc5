#pragma once

#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <string>

#include "compute/compute_status.h"

// The agent's Prometheus metrics, all declared here, rendered for GET /metrics:
//   pgbranch_compute_up                                  1 while running
//   pgbranch_compute_state{state}                        1 for the current state
//   pgbranch_compute_sessions{state}                     client sessions by state
//   pgbranch_compute_client_sessions, pgbranch_compute_autovacuum_workers, pgbranch_compute_busy
//   pgbranch_compute_startup_seconds                     spawn to running
//   pgbranch_compute_last_active_timestamp_seconds       last time busy was seen
//   pgbranch_compute_started_timestamp_seconds
// Thread-safe (prometheus-cpp gauges are atomic; Render serialises under its own lock).
namespace pgbranch::compute {

class ComputeMetrics {
 public:
  ComputeMetrics();
  // Updates every gauge from `view` and returns the text exposition format.
  std::string Render(const StatusView& view);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Gauge* up_;
  std::map<ComputeState, prometheus::Gauge*> state_;
  prometheus::Gauge* active_;
  prometheus::Gauge* idle_;
  prometheus::Gauge* idle_in_transaction_;
  prometheus::Gauge* client_sessions_;
  prometheus::Gauge* autovacuum_workers_;
  prometheus::Gauge* busy_;
  prometheus::Gauge* startup_seconds_;
  prometheus::Gauge* last_active_;
  prometheus::Gauge* started_;
  std::mutex mu_;
};

}  // namespace pgbranch::compute
