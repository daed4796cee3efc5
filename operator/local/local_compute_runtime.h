#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "operator/control/compute_runtime.h"
#include "operator/local/spare_agent.h"

// Computes as local processes: one `pgbranch-compute` per awake endpoint, working directory
// STATE/computes/<endpoint>. A monitor thread per compute polls the agent's /status (every few
// milliseconds while starting, so a wake is noticed at once; every 500 ms after) and reaps it.
//
// Computes outlive the controller: an agent runs in a session of its own, so a controller that
// crashes leaves it (and its PostgreSQL and mount) running, and the next controller adopts it
// (AdoptLeftovers) instead of starting a second one on the same branch. An adopted agent is not
// our child: its exit is noticed by polling, not waitpid. Thread-safe.
namespace pgbranch::cli {

struct LocalComputeOptions {
  std::string state_dir;
  std::string compute_bin;  // pgbranch-compute
  std::string pagefs_bin;
  std::string pg_bin_dir = "/usr/lib/postgresql/15/bin";
  std::string pageserver;  // host:port
  // Optional: the computes' pagefs commit over this channel (unix:PATH; compute config key
  // commit_channel, pagefs --commit-channel). Empty: over the pageserver's CommitStream.
  std::string commit_channel;
  std::string password_file;
  // When set, the password file of a compute on branch (ns, name): its branch's own
  // (BranchCredentials); `password_file` is then unused.
  std::function<absl::StatusOr<std::string>(const std::string& ns, const std::string& branch)>
      password_file_for;
  std::string role = "app";
  std::string database = "app";
  int stop_timeout_seconds = 20;
  // Keep one agent started ahead (SpareAgent) and hand it the next compute.
  bool spare_agent = true;
};

class LocalComputeRuntime : public control::ComputeRuntime {
 public:
  using ChangeFn = std::function<void(const std::string& ns, const std::string& endpoint)>;

  LocalComputeRuntime(LocalComputeOptions options, ChangeFn on_change);
  ~LocalComputeRuntime() override;

  // Takes over the agents a previous controller left running (after a crash) whose endpoint
  // `keep` accepts; stops the others and lazily unmounts what dead agents left mounted, so that
  // no two PostgreSQL ever write one branch. Call before the first Start().
  void AdoptLeftovers(const std::string& ns, const std::function<bool(const std::string&)>& keep);

  // Stops every PostgreSQL, compute agent and pagefs mount under STATE/computes, whoever started
  // them: PostgreSQL first (fast shutdown, then immediate, then SIGKILL), then the agents, then
  // pagefs (unmount, then its flush), then lazy unmounts of what is left. For `local down` after
  // a controller crash. Returns how many agents or postmasters it found.
  static int StopEverything(const std::string& state_dir, int stop_timeout_seconds);

  // Applies changed PostgreSQL parameters to a running compute: rewrites its config and asks
  // the agent to reload it (SIGHUP); the agent reloads PostgreSQL, or restarts it when a
  // parameter needs a restart (pg_settings.context postmaster). Returns true when the agent was
  // asked; false when nothing runs or the parameters are unchanged.
  bool UpdateParameters(const std::string& ns, const std::string& endpoint,
                        const std::map<std::string, std::string>& parameters);

  // What the agent reported about the last parameter change ("" if none): e.g. "restarted
  // PostgreSQL to apply shared_buffers".
  std::string ParametersMessage(const std::string& ns, const std::string& endpoint);

  // The agent's status port of a running compute (0 if none).
  int StatusPort(const std::string& ns, const std::string& endpoint);
  // Stops every compute and waits (bounded) for them to exit and for every monitor thread to be
  // done (after it, no callback runs).
  void StopAll();

  absl::Status Start(const control::ComputeSpec& spec) override;
  absl::Status Stop(const std::string& ns, const std::string& endpoint) override;
  control::ComputeObservation Observe(const std::string& ns, const std::string& endpoint) override;
  // POST /checkpoint to the agent of a running compute.
  absl::StatusOr<bool> Checkpoint(const std::string& ns, const std::string& endpoint,
                                  absl::Duration timeout) override;

 private:
  struct Compute {
    pid_t pid = -1;
    bool adopted = false;  // started by an earlier controller: not our child
    std::string workdir;
    int pg_port = 0;
    int status_port = 0;
    bool stop_requested = false;
    absl::Time stop_time;
    control::ComputeObservation obs;
    std::string parameters_yaml;       // the "parameters:" section of compute.yaml
    std::string parameters_message;    // the agent's report on the last change
    bool wait_start_supported = true;  // its agent serves /status/wait-start (Monitor thread)
    std::thread monitor;
  };

  void Monitor(std::string key, std::shared_ptr<Compute> c);
  // Whether the agent exited (reaped, with its wait status, if it is our child).
  static bool Exited(Compute* c, int* status);
  // Reads the agent's /status into `obs`; false if it did not answer. `starting`: the agent
  // may hold the answer until its start ended.
  bool Poll(Compute* c, bool starting, control::ComputeObservation* obs,
            std::string* parameters_message);

  const LocalComputeOptions options_;
  const ChangeFn on_change_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::shared_ptr<Compute>> computes_;  // GUARDED_BY(mu_)
  bool shutting_down_ = false;                                // GUARDED_BY(mu_)
  int monitors_ = 0;  // live monitor threads; StopAll waits for none. GUARDED_BY(mu_)
  std::unique_ptr<SpareAgent> spare_;  // null without options_.spare_agent
};

}  // namespace pgbranch::cli
