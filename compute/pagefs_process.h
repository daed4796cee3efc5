#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "compute/child_process.h"
#include "compute/compute_config.h"
#include "compute/spare_pagefs.h"

// The pagefs mount of a compute's timeline. pagefs runs in the foreground as a child of the
// agent (so the agent learns at once when it dies, and can wait for its final flush after the
// unmount); its output goes to workdir/pagefs.log.
//
// Invariant: once Unmount() returns, nothing of ours is mounted on the mountpoint and the pagefs
// process has exited (after a flush, unless it had to be killed).
namespace pgbranch::compute {

class PagefsProcess {
 public:
  PagefsProcess(const ComputeConfig& config, std::string mountpoint, std::string log_path);

  // Unmounts (lazily) whatever a previous agent left mounted on the mountpoint: a crashed agent
  // leaves a dead FUSE mount behind, on which every access fails with ENOTCONN.
  absl::Status ClearStaleMount();

  // A pagefs started ahead (spare_pagefs.h): the next Mount hands it its arguments instead of
  // starting one, if it runs the configured pagefs binary.
  void set_spare(std::optional<SparePagefs> spare) { spare_ = std::move(spare); }

  // Starts pagefs and waits until the kernel lists the mount. Returns early with an error when
  // pagefs exits (its own message, e.g. an unreachable pageserver), when `should_abort` says so
  // (SIGTERM), or after `timeout`. `sleep` is how to wait between checks (the agent's signal
  // wait, so a signal or a child's exit interrupts it).
  absl::Status Mount(std::chrono::milliseconds timeout, const std::function<bool()>& should_abort,
                     const std::function<void(std::chrono::milliseconds)>& sleep);

  // Whether pagefs is still running (reaps it if it exited).
  bool Alive();
  // Why pagefs stopped: its exit and the tail of its log.
  std::string DescribeExit();

  // fusermount3 -u (retried while busy, up to `busy_timeout`; if still busy: a lazy unmount and
  // SIGTERM, on which pagefs flushes and exits too); then waits up to `flush_timeout` for pagefs
  // to flush and exit, and SIGKILLs it as a last resort. OK when pagefs exited 0.
  absl::Status Unmount(std::chrono::milliseconds busy_timeout,
                       std::chrono::milliseconds flush_timeout);

  pid_t pid() const { return child_.pid(); }

  // Whether `path` is a mount point in this process's mount namespace (/proc/self/mountinfo).
  static bool IsMountPoint(const std::string& path);

 private:
  absl::Status RunFusermount(const std::vector<std::string>& args);

  const ComputeConfig& config_;
  std::string mountpoint_;
  std::string log_path_;
  off_t log_offset_ = 0;  // where this run's output starts in the (appended) log
  ChildProcess child_;
  std::optional<SparePagefs> spare_;
};

}  // namespace pgbranch::compute
