#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

// One compute agent started ahead of need (`pgbranch-compute --spare-under ROOT`): exec'd,
// its libraries loaded and linked, waiting on its stdin (a pipe: one end of a socket pair) for
// the path of a compute's configuration.
// Starting a compute then costs a write to that pipe instead of a fork of the controller and an
// exec (~10 ms of a new branch's start on a 2-vCPU machine: README "The data path").
//
// Invariants:
// - At most one spare exists; it is the controller's child (reaped here until handed over, by
//   the compute's monitor after) and reads nothing but that pipe before it is handed over.
// - A spare that is never handed over exits on its own when the pipe's write end closes: when
//   this object is destroyed, or when the controller dies however it dies.
// - Take() never blocks on the spare: a spare that died or is not there yet is reported, and
//   the caller starts the agent itself as before. (One that dies while it is being handed over
//   takes the compute with it: the caller's monitor sees that agent exit, a failed start.)
// - A replacement is started `refill_delay` after a take, not at once: its exec competes for the
//   CPUs with the compute that was just handed over, whose start someone is waiting for.
//
// Thread-safe.
namespace pgbranch::cli {

class SpareAgent {
 public:
  // `root`: STATE/computes/ (with the trailing slash); every configuration handed over lies
  // below it. `log`: where the spare writes before it is handed over.
  SpareAgent(std::string compute_bin, std::string root, std::string log,
             absl::Duration refill_delay);
  ~SpareAgent();
  SpareAgent(const SpareAgent&) = delete;
  SpareAgent& operator=(const SpareAgent&) = delete;

  // Hands the spare the compute whose configuration is `config_path` and whose log is
  // `log_path` (the agent appends its output there from then on); its pid, which the caller
  // now owns (and reaps). Unavailable when no live spare is ready.
  absl::StatusOr<pid_t> Take(const std::string& config_path, const std::string& log_path);

  // The command-line argument that marks a spare (and an agent that started as one).
  static constexpr char kFlag[] = "--spare-under";

 private:
  void Keep();
  // Starts a spare; false if it could not. Called with mu_ held.
  bool StartLocked();
  // No spare from now on (its pipe closed, its pid forgotten); the next starts at `next_start`.
  // Called with mu_ held.
  void ForgetLocked(absl::Time next_start);
  // Ends the current spare (closes its pipe, reaps it). Called with mu_ held.
  void DropLocked();

  const std::string compute_bin_;
  const std::string root_;
  const std::string log_;
  const absl::Duration refill_delay_;
  std::mutex mu_;
  std::condition_variable cv_;
  pid_t pid_ = -1;          // GUARDED_BY(mu_)
  int pipe_ = -1;           // our end of the spare's stdin (a socket pair); GUARDED_BY(mu_)
  absl::Time start_after_;  // GUARDED_BY(mu_)
  bool stop_ = false;       // GUARDED_BY(mu_)
  std::thread keeper_;
};

}  // namespace pgbranch::cli
