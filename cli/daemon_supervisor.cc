#include "cli/daemon_supervisor.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace pgbranch::cli {
namespace {

using Clock = std::chrono::steady_clock;

// The daemons restarted when they die (the controller is the process this runs in).
const std::vector<Daemon> kSupervised = {Daemon::kPageserver, Daemon::kProxy};

}  // namespace

DaemonSupervisor::DaemonSupervisor(CliContext ctx, PingFn ping, PageserverFn on_pageserver)
    : ctx_(ctx),
      daemons_(std::move(ctx)),
      ping_(std::move(ping)),
      on_pageserver_(std::move(on_pageserver)) {}

DaemonSupervisor::~DaemonSupervisor() { Stop(); }

void DaemonSupervisor::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void DaemonSupervisor::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void DaemonSupervisor::Loop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_) {
    l.unlock();
    CheckOnce();
    l.lock();
    cv_.wait_for(l, std::chrono::milliseconds(500), [this] { return stop_; });
  }
}

void DaemonSupervisor::CheckOnce() {
  absl::StatusOr<LocalInstance> inst = ctx_.Instance();
  if (!inst.ok() || inst->pageserver.empty() || inst->proxy_port == 0) return;  // not up yet
  bool changed = false;
  std::vector<pid_t> pids = daemons_.FindAll(kSupervised);
  if (std::count(pids.begin(), pids.end(), 0) > 0) {
    absl::StatusOr<LocalDaemons::Lock> lock = daemons_.Acquire(absl::ZeroDuration());
    if (!lock.ok()) return;  // `local up` or `local down` is at work
    inst = ctx_.Instance();  // re-read under the lock
    if (!inst.ok()) return;
    pids = daemons_.FindAll(kSupervised);
    for (size_t i = 0; i < kSupervised.size(); ++i) {
      Supervise(kSupervised[i], pids[i] != 0, &*inst, &changed);
    }
    if (changed) {
      absl::Status s = ctx_.WriteInstance(*inst);
      if (!s.ok()) LogError("Cannot record the restarted daemons", {{"error", s.ToString()}});
    }
  } else {
    for (Daemon d : kSupervised) {
      Backoff& b = backoff_[d];
      if (b.up_since == Clock::time_point{}) b.up_since = Clock::now();
      if (Clock::now() - b.up_since > std::chrono::minutes(1)) b.delay = std::chrono::seconds(1);
    }
  }
  absl::Status ping = ping_();
  // Errors the pageserver itself gives (no tenants yet...) still mean it answers.
  bool reachable = !absl::IsUnavailable(ping) && !absl::IsDeadlineExceeded(ping);
  on_pageserver_(reachable, reachable
                                ? ""
                                : absl::StrCat("the pageserver at ", inst->pageserver,
                                               " is not reachable, so the endpoint's reads and "
                                               "writes fail until it is back (see ",
                                               daemons_.LogPath(Daemon::kPageserver), ")"));
}

void DaemonSupervisor::Supervise(Daemon d, bool running, LocalInstance* inst, bool* changed) {
  if (running) return;
  Backoff& b = backoff_[d];
  b.up_since = {};
  if (Clock::now() < b.next_try) return;
  LogWarning(absl::StrCat("Restarting ", LocalDaemons::Name(d), ": it is not running"),
             {{"retry_delay", absl::StrCat(b.delay.count(), "s")}});
  absl::Status s = daemons_.Start(d, inst);
  b.next_try = Clock::now() + b.delay;
  b.delay = std::min(b.delay * 2, std::chrono::seconds(30));
  if (!s.ok()) {
    LogError(absl::StrCat("Cannot restart ", LocalDaemons::Name(d)),
             {{"error", s.ToString()}, {"next_try_in", absl::StrCat(b.delay.count(), "s")}});
    return;
  }
  *changed = true;
  LogInfo(absl::StrCat("Restarted ", LocalDaemons::Name(d)),
          {{"pid", std::to_string(d == Daemon::kProxy ? inst->proxy_pid : inst->pageserver_pid)},
           {"address", d == Daemon::kProxy ? absl::StrCat("127.0.0.1:", inst->proxy_port)
                                           : inst->pageserver}});
}

}  // namespace pgbranch::cli
