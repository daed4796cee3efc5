#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "proxy/connection_registry.h"
#include "proxy/control_client.h"

namespace pgbranch::proxy {

// Tells the controller how many client connections each endpoint has (POST /v1/proxy/activity),
// so that it never suspends an endpoint under an open session.
//
// A background thread reports whenever the registry's counts change, coalescing bursts (at most
// one report per `min_interval`), and at least every `max_interval` as a heartbeat. A failed
// report is not retried on its own: the next heartbeat carries the full state again.
class ActivityReporter {
 public:
  struct Options {
    std::chrono::milliseconds min_interval{100};
    std::chrono::milliseconds max_interval{1000};
  };

  ActivityReporter(ControlClient* control, ConnectionRegistry* registry, Options options);
  ~ActivityReporter();  // Stop()

  void Start();
  // Ends the thread (calling registry->Shutdown() to wake it), then sends one last report so
  // the controller hears about connections cut at shutdown. Idempotent.
  void Stop();

 private:
  void Loop();
  // Reports the current counts; returns the registry version they belong to.
  uint64_t ReportOnce(bool* failing);
  // Sleeps until `until` or Stop(); false when stopping.
  bool SleepUntil(std::chrono::steady_clock::time_point until);

  ControlClient* const control_;
  ConnectionRegistry* const registry_;
  const Options options_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace pgbranch::proxy
