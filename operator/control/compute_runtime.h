#pragma once

#include <map>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

// Runs computes (PostgreSQL on pagefs, driven by pgbranch-compute): local processes in local
// mode, pods in Kubernetes. Start and Stop are asynchronous and idempotent; Observe reports.
namespace pgbranch::control {

enum class ComputeState { kAbsent, kStarting, kRunning, kStopping, kFailed };
const char* ComputeStateName(ComputeState s);

struct ComputeSpec {
  std::string ns;
  std::string endpoint;
  std::string endpoint_uid;  // Kubernetes: owner of the compute's pod and Secret
  std::string branch;
  std::string tenant_id;
  std::string timeline_id;
  bool read_only = false;  // a hot standby on its own ephemeral timeline
  std::map<std::string, std::string> postgres_parameters;
  std::string cpu;
  std::string memory;
  std::string image;
};

struct ComputeObservation {
  ComputeState state = ComputeState::kAbsent;
  bool busy = false;  // a client session is open, a query runs, or autovacuum works
  std::optional<absl::Time> last_active;
  std::string message;  // why it failed
  std::string host;     // where PostgreSQL listens once running
  int port = 0;
};

class ComputeRuntime {
 public:
  virtual ~ComputeRuntime() = default;
  // Starts the compute unless it is already starting or running. A failed one is restarted.
  virtual absl::Status Start(const ComputeSpec& spec) = 0;
  // Stops it cleanly (fast shutdown, flush, unmount) unless absent. Returns at once.
  virtual absl::Status Stop(const std::string& ns, const std::string& endpoint) = 0;
  virtual ComputeObservation Observe(const std::string& ns, const std::string& endpoint) = 0;
  // Has the running read-write compute of `endpoint` CHECKPOINT and waits for it (at most
  // `timeout`): a branch taken right after starts from a data directory whose redo point is at
  // the branch point, so its first start replays next to no WAL. The compute skips it when so
  // little WAL was written since its last checkpoint that replaying it is cheaper: true when it
  // checkpointed. Only an optimisation: any error leaves the branch to replay more.
  // Unimplemented where the runtime cannot reach the compute.
  virtual absl::StatusOr<bool> Checkpoint(const std::string& ns, const std::string& endpoint,
                                          absl::Duration timeout) {
    (void)ns, (void)endpoint, (void)timeout;
    return absl::UnimplementedError("this compute runtime does not checkpoint on request");
  }
};

}  // namespace pgbranch::control
