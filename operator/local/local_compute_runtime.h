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

// Computes as local processes: one `pgbranch-compute` per awake endpoint, working directory
// STATE/computes/<endpoint>. A monitor thread per compute polls the agent's /status (every few
// milliseconds while starting, so a wake is noticed at once; every 500 ms after) and reaps it.
// Thread-safe.
namespace pgbranch::cli {

struct LocalComputeOptions {
  std::string state_dir;
  std::string compute_bin;  // pgbranch-compute
  std::string pagefs_bin;
  std::string pg_bin_dir = "/usr/lib/postgresql/15/bin";
  std::string pageserver;  // host:port
  std::string password_file;
  // When set, the password file of a compute on branch (ns, name): its branch's own
  // (BranchCredentials); `password_file` is then unused.
  std::function<absl::StatusOr<std::string>(const std::string& ns, const std::string& branch)>
      password_file_for;
  std::string role = "app";
  std::string database = "app";
  int stop_timeout_seconds = 20;
};

class LocalComputeRuntime : public control::ComputeRuntime {
 public:
  using ChangeFn = std::function<void(const std::string& ns, const std::string& endpoint)>;

  LocalComputeRuntime(LocalComputeOptions options, ChangeFn on_change);
  ~LocalComputeRuntime() override;

  // Stops agents a previous controller left running (after a crash) and lazily unmounts their
  // mounts, so that no two PostgreSQL ever write one branch.
  void CleanupLeftovers();
  // Stops every compute and waits (bounded) for them to exit and for every monitor thread to be
  // done (after it, no callback runs).
  void StopAll();

  absl::Status Start(const control::ComputeSpec& spec) override;
  absl::Status Stop(const std::string& ns, const std::string& endpoint) override;
  control::ComputeObservation Observe(const std::string& ns, const std::string& endpoint) override;

 private:
  struct Compute {
    pid_t pid = -1;
    std::string workdir;
    int pg_port = 0;
    int status_port = 0;
    bool stop_requested = false;
    absl::Time stop_time;
    control::ComputeObservation obs;
    std::thread monitor;
  };

  void Monitor(std::string key, std::shared_ptr<Compute> c);
  // Reads the agent's /status into `obs`; false if it did not answer.
  bool Poll(Compute* c, control::ComputeObservation* obs);

  const LocalComputeOptions options_;
  const ChangeFn on_change_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::shared_ptr<Compute>> computes_;  // GUARDED_BY(mu_)
  bool shutting_down_ = false;                                // GUARDED_BY(mu_)
  int monitors_ = 0;  // live monitor threads; StopAll waits for none. GUARDED_BY(mu_)
};

}  // namespace pgbranch::cli
