// pgbranch-compute: the compute agent of one endpoint (docs/local-mode-internals.md).
//
//   pgbranch-compute --config FILE
//   PGBRANCH_COMPUTE_CONFIG='<yaml>' pgbranch-compute      (a compute pod: config from the env)
//   pgbranch-compute --pool [--listen 0.0.0.0:8080]        (a pooled pod: PUT /config later)
//   pgbranch-compute --spare-under DIR    (local mode's spare: "CONFIG<TAB>LOG" on stdin later)
//
// Mounts the endpoint's timeline with pagefs, prepares and starts unmodified PostgreSQL on it as
// the postgres user, serves GET /status and GET /metrics, and on SIGTERM/SIGINT suspends
// cleanly: fast shutdown, unmount (pagefs flushes), exit 0. Exit codes: 0 after a clean stop,
// 1 when the compute failed (the message is logged and was shown on /status), 2 for a bad
// command line or configuration. Runs as root (FUSE); PostgreSQL runs as `postgres`.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/mutex_mode.h"
#include "compute/compute_agent.h"
#include "compute/compute_config.h"
#include "compute/config_receiver.h"
#include "compute/signal_waiter.h"
#include "compute/spare_pagefs.h"

namespace {

constexpr char kUsage[] =
    "usage: pgbranch-compute --config FILE\n"
    "   or: PGBRANCH_COMPUTE_CONFIG='<yaml or json>' pgbranch-compute\n"
    "   or: pgbranch-compute --pool [--listen 0.0.0.0:8080]   (waits for PUT /config)\n"
    "   or: pgbranch-compute --spare-under DIR   (reads \"CONFIG<TAB>LOG\" from stdin)\n";

// Local mode's spare agent (operator/local/spare_agent.h): waits for one line "CONFIG\tLOG" on
// stdin, CONFIG a configuration file below `dir`, then appends its output to LOG and returns
// CONFIG. Empty when stdin ends first (the controller is gone or stopped its spare): exit 0.
// Runs before any thread exists; a signal meanwhile ends the process (nothing to clean up).
absl::StatusOr<std::optional<std::string>> WaitForSpareConfig(const std::string& dir) {
  std::string line;
  char buf[4096];
  for (;;) {
    ssize_t n = read(0, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
    if (line.find('\n') != std::string::npos) break;
  }
  if (line.empty()) return std::nullopt;
  size_t tab = line.find('\t');
  size_t end = line.find('\n');
  if (tab == std::string::npos || end == std::string::npos || end < tab) {
    return absl::InvalidArgumentError(
        "a spare agent reads \"CONFIG<TAB>LOG\" and a newline on stdin");
  }
  std::string config = line.substr(0, tab);
  std::string log = line.substr(tab + 1, end - tab - 1);
  if (dir.empty() || config.rfind(dir, 0) != 0 || log.empty() || log[0] != '/') {
    return absl::InvalidArgumentError("the configuration " + config + " is not below " + dir);
  }
  int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::InvalidArgumentError("cannot open " + log + ": " + strerror(errno));
  }
  fflush(stdout);
  fflush(stderr);
  dup2(fd, 1);
  dup2(fd, 2);
  close(fd);
  int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (in >= 0) {
    dup2(in, 0);
    close(in);
  }
  return config;
}

constexpr int kSparePagefsDelayMs = 500;

// `pagefs --spare DIR` from the agent's own directory, where local mode's pagefs is; nullopt if
// there is none or it cannot start (the mount then starts pagefs itself).
std::optional<pgbranch::compute::SparePagefs> StartSparePagefs(const std::string& dir) {
  const std::string bin = pgbranch::compute::FileNextToExecutable("pagefs");
  if (bin.empty() || access(bin.c_str(), X_OK) != 0) return std::nullopt;
  absl::StatusOr<pgbranch::compute::SparePagefs> spare =
      pgbranch::compute::SparePagefs::Start(bin, dir);
  if (!spare.ok()) return std::nullopt;
  return std::move(*spare);
}

}  // namespace

int main(int argc, char** argv) {
  pgbranch::UseReleaseMutexMode();
  using namespace pgbranch;
  using namespace pgbranch::compute;
  std::string config_path;
  std::optional<SparePagefs> spare_pagefs;
  std::optional<ComputeConfig> pooled_config;
  bool pool = false;
  std::string spare_dir;
  std::string pool_listen = "0.0.0.0:8080";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      fputs(kUsage, stdout);
      return 0;
    }
    if (a == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      config_path = a.substr(9);
    } else if (a == "--spare-under" && i + 1 < argc) {
      spare_dir = argv[++i];
    } else if (a == "--pool") {
      pool = true;
    } else if (a == "--listen" && i + 1 < argc) {
      pool_listen = argv[++i];
    } else if (a.rfind("--listen=", 0) == 0) {
      pool_listen = a.substr(9);
    } else {
      fprintf(stderr, "pgbranch-compute: unexpected argument %s\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  if (!spare_dir.empty()) {
    if (pool || !config_path.empty()) {
      fprintf(stderr, "pgbranch-compute: --spare-under excludes --pool and --config\n%s", kUsage);
      return 2;
    }
    // pagefs, too, is started ahead (spare_pagefs.h): a new branch's mount then skips its exec.
    // Not at once: this spare was started right after a compute took the previous one, whose
    // start someone is waiting for (~150-450 ms on 2 vCPUs); pagefs's exec would compete with it
    // for the CPUs. A hand-over within that time mounts with a pagefs of its own, as before.
    pollfd in{0, POLLIN, 0};
    if (poll(&in, 1, kSparePagefsDelayMs) == 0) spare_pagefs = StartSparePagefs(spare_dir);
    absl::StatusOr<std::optional<std::string>> received = WaitForSpareConfig(spare_dir);
    if (!received.ok()) {
      fprintf(stderr, "pgbranch-compute: %s\n", std::string(received.status().message()).c_str());
      return 2;
    }
    if (!*received) return 0;
    config_path = **received;
  }
  const char* env_config = getenv("PGBRANCH_COMPUTE_CONFIG");
  if (pool && !config_path.empty()) {
    fprintf(stderr, "pgbranch-compute: --pool and --config exclude each other\n%s", kUsage);
    return 2;
  }
  if (!pool && config_path.empty() && (env_config == nullptr || *env_config == '\0')) {
    fprintf(stderr, "pgbranch-compute: --config or PGBRANCH_COMPUTE_CONFIG is required\n%s",
            kUsage);
    return 2;
  }
  // Before any thread exists, so that every thread inherits the blocked signals.
  SignalWaiter::BlockSignals();

  std::string unknown;
  if (pool) {
    // A pre-started compute without an endpoint: wait for PUT /config (or a stop signal).
    ConfigReceiver receiver;
    if (absl::Status s = receiver.Start(pool_listen); !s.ok()) {
      fprintf(stderr, "pgbranch-compute: --listen %s: %s\n", pool_listen.c_str(),
              std::string(s.message()).c_str());
      return 2;
    }
    LogInfo("Pooled: waiting for PUT /config", {{"listen", pool_listen}});
    SignalWaiter pool_waiter;
    while (!receiver.config() && !pool_waiter.stop_requested()) {
      pool_waiter.Sleep(std::chrono::milliseconds(20));
    }
    receiver.Stop();  // frees the port for the agent's own /status
    if (!receiver.config()) return 0;
    env_config = nullptr;
    pooled_config = receiver.config();
  }
  absl::StatusOr<ComputeConfig> config =
      pooled_config         ? absl::StatusOr<ComputeConfig>(*pooled_config)
      : config_path.empty() ? ParseComputeConfig(env_config, &unknown)
                            : LoadComputeConfig(config_path, &unknown);
  if (!config.ok()) {
    fprintf(stderr, "pgbranch-compute: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  SetLogLevel(config->log_level == "debug"     ? LogLevel::kDebug
              : config->log_level == "warning" ? LogLevel::kWarning
              : config->log_level == "error"   ? LogLevel::kError
                                               : LogLevel::kInfo);
  if (!unknown.empty()) LogWarning("Ignoring unknown config keys", {{"keys", unknown}});
  if (geteuid() != 0) {
    fprintf(stderr,
            "pgbranch-compute: must run as root (FUSE mounts; PostgreSQL runs as postgres)\n");
    return 2;
  }
  SignalWaiter waiter;
  ComputeAgent agent(std::move(*config), RealClock(), &waiter);
  agent.set_config_path(config_path);  // SIGHUP re-reads its parameters
  if (spare_pagefs.has_value()) agent.set_spare_pagefs(std::move(*spare_pagefs));
  return agent.Run();
}
