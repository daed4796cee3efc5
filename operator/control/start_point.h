#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "operator/control/timeline_service.h"

// Whether a start point — an LSN or a time on a source timeline (a child branch's parent, or a
// ReadOnly endpoint's branch) — lies inside the source's readable history: not before its oldest
// readable point (older history was garbage-collected), not after its head, and a time not in
// the future. Shared by local mode's admission (refused before anything is stored) and the
// BranchReconciler (in Kubernetes CEL cannot see history, so the Ready condition says it).
namespace pgbranch::control {

struct StartPoint {
  std::string object;  // for messages: `Branch "dev"`
  std::string source;  // the source's name for messages: "main"
  std::string tenant_id;
  std::string timeline_id;
  std::optional<uint64_t> lsn;  // 0 means the head, as at the pageserver
  std::optional<absl::Time> at;
};

// OK when the point is readable (or nothing is asked). Otherwise: INVALID_ARGUMENT built with
// FieldError (field "spec.lsn" or "spec.timestamp", reason "StartPointOutOfRange") whose detail
// names the readable range, or the timeline service's own error (UNAVAILABLE: try again).
// UNIMPLEMENTED lookups (a fake without them) are skipped: CreateTimeline checks again.
absl::Status CheckStartPoint(TimelineService* timelines, const StartPoint& point, absl::Time now);

inline constexpr char kReasonStartPointOutOfRange[] = "StartPointOutOfRange";

}  // namespace pgbranch::control
