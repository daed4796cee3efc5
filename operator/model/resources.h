#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"

// The Branch and Endpoint resources (group pgbranch.io, version v1alpha1): the same YAML in
// local mode and as Kubernetes custom resources (DESIGN.md section 4). Plain values; parsing and
// validation live in manifest.h.
namespace pgbranch::control {

inline constexpr char kApiVersion[] = "pgbranch.io/v1alpha1";

struct ObjectMeta {
  std::string name;
  std::string namespace_ = "default";
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  // Set by the object store, never by a manifest.
  std::string uid;
  int64_t generation = 0;  // raised by every spec change
  absl::Time creation_timestamp = absl::InfinitePast();
  std::optional<absl::Time> deletion_timestamp;  // deletion requested; cleanup pending
};

// A Kubernetes-style condition (API conventions: "Ready" first, True/False/Unknown).
struct Condition {
  std::string type;
  std::string status = "Unknown";
  std::string reason;
  std::string message;
  absl::Time last_transition_time = absl::InfinitePast();
  int64_t observed_generation = 0;
};

struct BranchSpec {
  std::string parent;                   // empty: a root branch (a new database)
  std::optional<uint64_t> lsn;          // start point on the parent
  std::optional<absl::Time> timestamp;  // or: the parent as of this time
  // Expiration, Lakebase semantics: exactly one of the three.
  std::optional<absl::Duration> ttl;      // from creation
  std::optional<absl::Time> expire_time;  // an absolute time
  bool no_expiry = false;
  bool protected_ = false;  // refuses delete and reset
  // Declarative reset from the parent: raising it asks for one reset.
  int64_t reset_generation = 0;
  std::optional<absl::Duration> history_window;  // retention of readable history
  std::optional<uint64_t> history_bytes;
};

// Phases are for printer columns only; conditions carry the meaning.
inline constexpr char kPhaseReady[] = "Ready";
inline constexpr char kPhasePending[] = "Pending";
inline constexpr char kPhaseResetting[] = "Resetting";
inline constexpr char kPhaseDeleting[] = "Deleting";
inline constexpr char kPhaseExpired[] = "Expired";
inline constexpr char kPhaseFailed[] = "Failed";

struct BranchStatus {
  std::string phase;
  std::string tenant_id;
  std::string timeline_id;
  std::string parent_timeline_id;
  uint64_t parent_lsn = 0;
  uint64_t head_lsn = 0;
  int64_t logical_size = 0;
  uint64_t diverged_bytes = 0;
  std::optional<absl::Time> expire_time;
  int64_t observed_reset_generation = 0;
  std::optional<absl::Time> last_reset_time;
  std::vector<Condition> conditions;
  int64_t observed_generation = 0;
};

struct Branch {
  ObjectMeta metadata;
  BranchSpec spec;
  BranchStatus status;
};

enum class EndpointType { kReadWrite, kReadOnly };

struct EndpointSpec {
  std::string branch;
  EndpointType type = EndpointType::kReadWrite;
  std::optional<uint64_t> lsn;                        // ReadOnly only
  std::optional<absl::Time> timestamp;                // ReadOnly only
  absl::Duration suspend_timeout = absl::Minutes(5);  // 0: never suspend
  std::string cpu;                                    // Kubernetes quantities, e.g. "500m"
  std::string memory;                                 // e.g. "1Gi"
  std::string image;
  std::map<std::string, std::string> postgres_parameters;
};

inline constexpr char kPhaseStarting[] = "Starting";
inline constexpr char kPhaseRunning[] = "Running";
inline constexpr char kPhaseSuspending[] = "Suspending";
inline constexpr char kPhaseSuspended[] = "Suspended";
inline constexpr char kPhaseConflict[] = "Conflict";  // a second ReadWrite endpoint on a branch

struct EndpointStatus {
  std::string phase;
  std::string host;         // where clients connect (the proxy)
  int port = 0;             // the endpoint's own port at the proxy
  std::string timeline_id;  // the timeline the compute runs on (ephemeral for ReadOnly)
  std::string secret_name;  // local mode: the password file; Kubernetes: the Secret
  std::optional<absl::Time> last_active;
  std::string message;  // why the last start failed, for a person
  int64_t restarts = 0;
  std::vector<Condition> conditions;
  int64_t observed_generation = 0;
};

// Requests a person makes of an endpoint's compute, as annotations holding an RFC 3339 time (the
// same in local mode, where `pgbranch endpoint suspend|start` sets them, and in Kubernetes, with
// `kubectl annotate --overwrite`). The later of the two wins; a wake (a new connection) after a
// suspend request starts the compute again, as after an idle suspend.
//  - suspend: stop the compute now (clean fast shutdown), sessions or not, and keep it stopped;
//  - start: start it now, as a wake does (it counts as activity for suspendTimeout).
// `pgbranch branch restore PARENT --to RESTORE_POINT` (docs/promotion.md), as annotations so the
// Branch schema does not change. On PARENT: the restore point, the branch that keeps PARENT's
// current state, and the spec.resetGeneration the restore is for (raising resetGeneration with
// these equal to it asks for a restore instead of a reset). On the branch that keeps the state:
// PARENT's name (its timeline is made by PARENT's restore, not by its own reconciler).
inline constexpr char kAnnotationRestoreTo[] = "pgbranch.io/restore-to";
inline constexpr char kAnnotationRestoreKeepAs[] = "pgbranch.io/restore-keep-current-as";
inline constexpr char kAnnotationRestoreGeneration[] = "pgbranch.io/restore-generation";
inline constexpr char kAnnotationRestoreOf[] = "pgbranch.io/restore-of";

inline constexpr char kAnnotationSuspendRequestedAt[] = "pgbranch.io/suspend-requested-at";
inline constexpr char kAnnotationStartRequestedAt[] = "pgbranch.io/start-requested-at";

struct Endpoint {
  ObjectMeta metadata;
  EndpointSpec spec;
  EndpointStatus status;
};

}  // namespace pgbranch::control
