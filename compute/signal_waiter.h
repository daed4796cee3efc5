#pragma once

#include <atomic>
#include <chrono>

// The agent's main thread waits for signals synchronously: SIGTERM/SIGINT (stop), SIGCHLD (a
// child exited) and SIGHUP (ignored) are blocked in every thread and taken with sigtimedwait, so
// a wait between readiness checks ends at once when PostgreSQL or pagefs dies or a stop is asked.
namespace pgbranch::compute {

class SignalWaiter {
 public:
  // Blocks the signals in the calling thread and ignores SIGPIPE. Call in main() before any
  // thread starts, so that every thread inherits the mask (children get it reset before exec).
  static void BlockSignals();

  // Waits up to `timeout`, returning early when a signal arrives.
  void Sleep(std::chrono::milliseconds timeout);

  // A stop signal has arrived (SIGTERM or SIGINT). Thread-safe.
  bool stop_requested() const { return stop_signal_.load() != 0; }
  int stop_signal() const { return stop_signal_.load(); }

  // Whether a SIGHUP arrived since the last call (and clears it).
  bool TakeReloadRequest() { return reload_requested_.exchange(false); }

 private:
  std::atomic<int> stop_signal_{0};
  std::atomic<bool> reload_requested_{false};
};

}  // namespace pgbranch::compute
