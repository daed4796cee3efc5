#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include "absl/base/thread_annotations.h"
#include "common/clock.h"
#include "compute/activity_sampler.h"

// The agent's state as GET /status reports it (docs/local-mode-internals.md):
//   {"state": "starting|running|stopping|failed", "pg_port": N,
//    "sessions": {"active": 1, "idle": 0, "idle_in_transaction": 1}, "client_sessions": 2,
//    "autovacuum_workers": 0, "busy": true, "last_active": "RFC3339", "started_at": "RFC3339",
//    "startup_seconds": 0.21, "message": "", "endpoint": "dev",
//    "parameters_message": "restarted PostgreSQL to apply shared_buffers"}
//
// Invariants: `last_active` is the last time a snapshot showed busy, and never earlier than the
// agent's start (a freshly woken compute has not been idle since the epoch). Once failed, the
// state stays failed (stopping after a failure keeps the failure visible). Thread-safe.
namespace pgbranch::compute {

enum class ComputeState { kStarting, kRunning, kStopping, kFailed };

const char* StateName(ComputeState state);

struct StatusView {
  ComputeState state = ComputeState::kStarting;
  int pg_port = 0;
  ActivitySnapshot activity;
  int64_t last_active_micros = 0;
  int64_t started_at_micros = 0;
  double startup_seconds = 0;  // 0 until running
  std::string message;
  std::string endpoint;  // whose compute this is (the proxy checks it before trusting a port)
  // The outcome of the last change of PostgreSQL parameters ("" before any).
  std::string parameters_message;
};

class ComputeStatus {
 public:
  ComputeStatus(Clock* clock, int pg_port);

  // Running from now on: startup_seconds is the time since construction.
  void MarkRunning();
  void MarkStopping();
  // Starting again: PostgreSQL restarts (to apply a parameter); MarkRunning when it is back.
  void MarkRestarting();
  void MarkFailed(const std::string& message);
  void SetEndpoint(const std::string& endpoint);
  void SetParametersMessage(const std::string& message);
  // Records a fresh snapshot (updating last_active when busy).
  void Observe(const ActivitySnapshot& activity);

  ComputeState state() const;
  StatusView View() const;

  // The /status body.
  static std::string ToJson(const StatusView& view);

 private:
  Clock* const clock_;
  mutable std::mutex mu_;
  StatusView view_ ABSL_GUARDED_BY(mu_);
};

// RFC 3339 in UTC with milliseconds ("2026-11-21T10:42:00.123Z").
std::string FormatRfc3339(int64_t micros);
// A JSON string literal (quotes included).
std::string JsonString(const std::string& s);

}  // namespace pgbranch::compute
