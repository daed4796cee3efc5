#pragma once

#include <chrono>
#include <string>

#include "absl/status/statusor.h"
#include "compute/child_process.h"

// A child spawned with libpgbranch_start_gate.so preloaded (compute/start_gate.c): exec'd,
// loaded and linked, then held before main() until Open() lets it run or Discard() makes it
// exit. The agent spawns its postmaster this way before it mounts the branch, so that the
// dynamic linking of postgres overlaps the mount (postgres_process.h, Prespawn).
//
// Arguments that start with kGatedPrefix are stripped of it when the child is let run: they are
// meant to make the program refuse to start should the library not reach it.
//
// Not thread-safe (as ChildProcess).
namespace pgbranch::compute {

inline constexpr char kGatedPrefix[] = "pgbranch_gated_";

class GatedChild {
 public:
  GatedChild() = default;
  GatedChild(GatedChild&& other) noexcept;
  GatedChild& operator=(GatedChild&& other) noexcept;
  GatedChild(const GatedChild&) = delete;
  GatedChild& operator=(const GatedChild&) = delete;
  // Discards a child still held.
  ~GatedChild();

  // Spawns `options` with `library` preloaded (LD_PRELOAD) and a socket to the child as its
  // descriptor 3. `options.env` must be set (the child does not inherit the agent's).
  static absl::StatusOr<GatedChild> Spawn(SpawnOptions options, const std::string& library);

  // A child is held (spawned, neither opened nor discarded).
  bool held() const { return fd_ >= 0; }

  // Waits up to `timeout` for the child to report that it is held, then lets it run and
  // returns it. An error (the child exited: the library did not load; or it did not report in
  // time) discards it.
  absl::StatusOr<ChildProcess> Open(std::chrono::milliseconds timeout);

  // The held child exits (code 1) without running main(); reaped (SIGKILLed after 1 s).
  void Discard();

 private:
  ChildProcess child_;
  int fd_ = -1;  // the agent's end of the socket
};

// libpgbranch_start_gate.so next to the running executable, or "" when there is none.
std::string StartGateLibraryNextToExecutable();

}  // namespace pgbranch::compute
