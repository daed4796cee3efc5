#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "cli/local_daemons.h"

// Runs in the local controller: restarts the pageserver and the proxy when they die, with
// back-off, and reports whether the pageserver answers.
//
// A daemon is restarted only once the instance is fully up (local.json written by `local up`)
// and only while nobody else holds the daemons lock (`local up` repairing, `local down`
// stopping). Restarts reuse the recorded address (LocalDaemons) and update local.json. Back-off
// per daemon: 1 s after a restart, doubling to 30 s while it keeps dying; back to 1 s once it
// has run for a minute. Every restart is logged. Each check reads the processes' command lines
// (/proc/*/cmdline) once for both daemons; a check that finds one missing reads them once more
// under the lock, since whoever held it may have started the daemon meanwhile.
namespace pgbranch::cli {

class DaemonSupervisor {
 public:
  // `on_pageserver(reachable, message)` after every check of the pageserver: `ping` must
  // answer within a couple of seconds (an RPC with a short deadline: a pageserver that is
  // stopped, not dead, still accepts TCP connections).
  using PageserverFn = std::function<void(bool reachable, const std::string& message)>;
  using PingFn = std::function<absl::Status()>;

  DaemonSupervisor(CliContext ctx, PingFn ping, PageserverFn on_pageserver);
  ~DaemonSupervisor();  // Stop()

  void Start();
  void Stop();

 private:
  struct Backoff {
    std::chrono::steady_clock::time_point next_try{};
    std::chrono::seconds delay{1};
    std::chrono::steady_clock::time_point up_since{};
  };

  void Loop();
  void CheckOnce();
  // Restarts `d` if it is not running (`running`: found under the daemons lock, which the
  // caller holds) and its back-off allows.
  void Supervise(Daemon d, bool running, LocalInstance* inst, bool* changed);

  const CliContext ctx_;
  const LocalDaemons daemons_;
  const PingFn ping_;
  const PageserverFn on_pageserver_;
  std::map<Daemon, Backoff> backoff_;  // Loop thread only

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace pgbranch::cli
