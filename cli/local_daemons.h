#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/cli_context.h"

// The three daemons of a local-mode instance: the pageserver, the controller and the proxy.
//
// Invariants:
// - A daemon is found by its command line (it names a path under the state directory), never by
//   a recorded pid alone: pids are reused.
// - A restart reuses the address recorded in local.json (the pageserver's host:port, the
//   controller's URL, the proxy's port), so pagefs mounts, the proxy and clients reconnect to
//   the same place. Only a first start (nothing recorded) takes any free port.
// - Whoever starts or stops daemons (`local up`, `local down`, the controller's supervisor)
//   holds the instance's daemons lock (STATE/run/daemons.lock), so no daemon is started twice.
namespace pgbranch::cli {

enum class Daemon { kPageserver, kController, kProxy };

class LocalDaemons {
 public:
  explicit LocalDaemons(CliContext ctx) : ctx_(std::move(ctx)) {}

  // "pgbranch-pageserver", "the controller", "pgbranch-proxy".
  static const char* Name(Daemon d);

  // The pid of the running daemon, 0 if none runs.
  pid_t Find(Daemon d) const;
  // Find of each of `ds`, in order, from one read of the processes' command lines.
  std::vector<pid_t> FindAll(const std::vector<Daemon>& ds) const;

  // Starts `d` on the address recorded in `inst` (any free port if none is recorded) and waits
  // until it listens; records its address and pid in `inst` (the caller writes local.json).
  // The controller is started with inst->pageserver and inst->test_clock; the proxy with
  // inst->controller_url.
  absl::Status Start(Daemon d, LocalInstance* inst) const;

  // SIGTERM, up to `seconds` for it to exit, then SIGKILL. No-op if it does not run.
  void Stop(Daemon d, int seconds) const;

  // The log file of a daemon (STATE/logs/...).
  std::string LogPath(Daemon d) const;
  // Where a daemon writes its port once it listens (STATE/run/...).
  std::string PortFile(Daemon d) const;

  // The pageserver's Unix socket (STATE/run/ps.sock), which the computes' pagefs mounts use
  // (the commit path of every fsync crosses it twice; cheaper than loopback TCP). Empty when the
  // path does not fit in sockaddr_un's sun_path: the pageserver then serves TCP only, and
  // pagefs uses TCP too. Everything else (the controller's own calls, pagectl) uses TCP.
  static std::string PageserverSocket(const CliContext& ctx);
  // The pageserver's commit channel socket (STATE/run/pc.sock, pageserver --commit-socket).
  // Empty when the path does not fit in sun_path. The pageserver always serves it when it
  // fits; computes use it unless the controller runs with PGBRANCH_LOCAL_COMMIT_CHANNEL=0.
  static std::string CommitSocket(const CliContext& ctx);

  // The daemons lock: held while this object lives.
  class Lock {
   public:
    Lock(Lock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
    Lock& operator=(Lock&&) = delete;
    ~Lock();

   private:
    friend class LocalDaemons;
    explicit Lock(int fd) : fd_(fd) {}
    int fd_;
  };
  // Waits up to `timeout` for the lock (zero: one try). UNAVAILABLE if someone else holds it.
  absl::StatusOr<Lock> Acquire(absl::Duration timeout) const;

 private:
  std::vector<std::string> Identity(Daemon d) const;

  const CliContext ctx_;
};

}  // namespace pgbranch::cli
