#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "compute/os_user.h"

// A child process of the agent: spawned with everything prepared before fork() (the agent is
// multithreaded, so the child only makes async-signal-safe calls), reaped by its owner.
//
// Thread safety: not thread-safe; the agent spawns and reaps from its main thread only (which
// also makes the parent-death signal reliable: it fires when the forking thread exits).
namespace pgbranch::compute {

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is a path
  // Environment of the child; empty means "inherit the agent's".
  std::vector<std::string> env;
  // Run as this user (setgroups/setgid/setuid in the child). Null: as the agent's user.
  const OsUser* user = nullptr;
  // stdout and stderr are appended to this file; empty: /dev/null.
  std::string output_path;
  // Own session (setsid): signals meant for the agent (a terminal's ^C) do not reach it; the
  // agent decides how its children stop.
  bool new_session = true;
  // Sent to the child when the agent dies (0: none). Set after the credential change, which
  // would clear it.
  int parent_death_signal = 0;
  // Given to the child as its descriptor 3 (-1: none). Every other descriptor >= 3 is closed.
  int pass_fd = -1;
};

class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  // A child still running is SIGKILLed and reaped.
  ~ChildProcess();

  static absl::StatusOr<ChildProcess> Spawn(const SpawnOptions& options);

  pid_t pid() const { return pid_; }
  // Spawned and not yet seen exiting.
  bool running() const { return pid_ > 0 && !exited_; }
  bool exited() const { return exited_; }
  // Reaps the child if it has exited (non-blocking); returns exited().
  bool Poll();
  // Waits up to `timeout` for the child to exit; returns exited().
  bool WaitFor(std::chrono::milliseconds timeout);
  // Sends `sig` to the child (no-op once exited).
  void Signal(int sig);
  // Exit code, or 128 + signal number when killed. Valid once exited().
  int exit_code() const { return exit_code_; }
  // "exit code 1" / "killed by signal 9".
  std::string DescribeExit() const;

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  int exit_code_ = -1;
  int wait_status_ = 0;
};

// Runs a command to completion (or until `timeout`, then SIGKILL): the child, exited.
absl::StatusOr<ChildProcess> RunToCompletion(const SpawnOptions& options,
                                             std::chrono::milliseconds timeout);

// The file `name` in the running executable's directory, or "" when there is none (how the
// agent finds the binaries and libraries installed beside it).
std::string FileNextToExecutable(const std::string& name);

// The last `max_lines` non-empty lines of a text file written from `offset` on (for error
// messages that quote a log).
std::string TailOfFile(const std::string& path, int max_lines, off_t offset = 0);

}  // namespace pgbranch::compute
