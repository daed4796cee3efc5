#include "proxy/activity_reporter.h"

#include "common/log.h"

namespace pgbranch::proxy {

using SteadyClock = std::chrono::steady_clock;

ActivityReporter::ActivityReporter(ControlClient* control, ConnectionRegistry* registry,
                                   Options options)
    : control_(control), registry_(registry), options_(options) {}

ActivityReporter::~ActivityReporter() { Stop(); }

void ActivityReporter::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void ActivityReporter::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  registry_->Shutdown();
  if (thread_.joinable()) {
    thread_.join();
    bool failing = false;
    ReportOnce(&failing);
  }
}

bool ActivityReporter::SleepUntil(SteadyClock::time_point until) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_until(lock, until, [this] { return stop_; });
  return !stop_;
}

uint64_t ActivityReporter::ReportOnce(bool* failing) {
  uint64_t version = 0;
  std::map<std::string, int> counts = registry_->Snapshot(&version);
  absl::Status s = control_->ReportActivity(counts);
  if (s.ok()) {
    registry_->PruneZeros(counts);
    if (*failing) LogInfo("Reporting activity to the controller again");
    *failing = false;
  } else if (!*failing && !absl::IsCancelled(s)) {
    // Once per outage: the heartbeat retries every second.
    LogWarning("Cannot report activity to the controller", {{"error", s.ToString()}});
    *failing = true;
  }
  return version;
}

void ActivityReporter::Loop() {
  uint64_t reported_version = 0;
  bool failing = false;
  SteadyClock::time_point last_report = SteadyClock::now();
  while (true) {
    registry_->WaitForChange(reported_version, last_report + options_.max_interval);
    if (!SleepUntil(last_report + options_.min_interval)) return;
    last_report = SteadyClock::now();
    reported_version = ReportOnce(&failing);
  }
}

}  // namespace pgbranch::proxy
