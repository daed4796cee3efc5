#include "compute/compute_metrics.h"

#include <prometheus/text_serializer.h>

#include <sstream>

#include "common/metrics_util.h"

namespace pgbranch::compute {

ComputeMetrics::ComputeMetrics() : registry_(std::make_shared<prometheus::Registry>()) {
  auto& r = *registry_;
  up_ = &MakeGauge(r, "pgbranch_compute_up", "1 while PostgreSQL runs and accepts connections");
  auto& state = prometheus::BuildGauge()
                    .Name("pgbranch_compute_state")
                    .Help("1 for the compute's current state")
                    .Register(r);
  for (ComputeState s : {ComputeState::kStarting, ComputeState::kRunning, ComputeState::kStopping,
                         ComputeState::kFailed}) {
    state_[s] = &state.Add({{"state", StateName(s)}});
  }
  auto& sessions = prometheus::BuildGauge()
                       .Name("pgbranch_compute_sessions")
                       .Help("Client sessions by state (pg_stat_activity)")
                       .Register(r);
  active_ = &sessions.Add({{"state", "active"}});
  idle_ = &sessions.Add({{"state", "idle"}});
  idle_in_transaction_ = &sessions.Add({{"state", "idle_in_transaction"}});
  client_sessions_ =
      &MakeGauge(r, "pgbranch_compute_client_sessions", "Open client sessions of PostgreSQL");
  autovacuum_workers_ =
      &MakeGauge(r, "pgbranch_compute_autovacuum_workers", "Running autovacuum workers");
  busy_ = &MakeGauge(r, "pgbranch_compute_busy",
                     "1 while a client session is open or autovacuum works (never suspend)");
  startup_seconds_ =
      &MakeGauge(r, "pgbranch_compute_startup_seconds",
                 "Seconds from the agent's start to PostgreSQL accepting connections");
  last_active_ = &MakeGauge(r, "pgbranch_compute_last_active_timestamp_seconds",
                            "Unix time when the compute was last seen busy");
  started_ = &MakeGauge(r, "pgbranch_compute_started_timestamp_seconds",
                        "Unix time when the agent started");
}

std::string ComputeMetrics::Render(const StatusView& v) {
  std::lock_guard<std::mutex> lock(mu_);
  up_->Set(v.state == ComputeState::kRunning ? 1 : 0);
  for (auto& [s, g] : state_) g->Set(s == v.state ? 1 : 0);
  active_->Set(v.activity.active);
  idle_->Set(v.activity.idle);
  idle_in_transaction_->Set(v.activity.idle_in_transaction);
  client_sessions_->Set(v.activity.client_sessions);
  autovacuum_workers_->Set(v.activity.autovacuum_workers);
  busy_->Set(v.activity.busy() ? 1 : 0);
  startup_seconds_->Set(v.startup_seconds);
  last_active_->Set(static_cast<double>(v.last_active_micros) / 1e6);
  started_->Set(static_cast<double>(v.started_at_micros) / 1e6);
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

}  // namespace pgbranch::compute
