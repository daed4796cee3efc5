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
  int64_t generation = 0;
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

struct Branch {
  ObjectMeta metadata;
  BranchSpec spec;
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

struct Endpoint {
  ObjectMeta metadata;
  EndpointSpec spec;
};

}  // namespace pgbranch::control
