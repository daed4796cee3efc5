#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

// The pageserver as the control plane sees it: timelines, not pages.
namespace pgbranch::control {

struct TimelineInfo {
  std::string tenant_id;
  std::string timeline_id;
  std::string ancestor_timeline_id;
  uint64_t ancestor_lsn = 0;
  uint64_t head_lsn = 0;
  // History older than this was garbage-collected: a child can start at [oldest, head].
  uint64_t oldest_readable_lsn = 0;
  std::optional<absl::Time> head_time;  // the last commit's time
  int64_t logical_size = 0;             // bytes visible at the head
  uint64_t diverged_bytes = 0;          // bytes written on this timeline, history included
  std::vector<std::string> children;
};

class TimelineService {
 public:
  virtual ~TimelineService() = default;

  // Creates the tenant if it does not exist yet.
  virtual absl::Status EnsureTenant(const std::string& tenant_id) = 0;
  // `ancestor_id` empty: a new, empty root timeline. Otherwise a child at `lsn` (0: the head) or
  // as of `at`. ALREADY_EXISTS when the id is taken.
  virtual absl::StatusOr<TimelineInfo> CreateTimeline(const std::string& tenant_id,
                                                      const std::string& timeline_id,
                                                      const std::string& ancestor_id, uint64_t lsn,
                                                      std::optional<absl::Time> at) = 0;
  virtual absl::StatusOr<TimelineInfo> GetTimeline(const std::string& tenant_id,
                                                   const std::string& timeline_id) = 0;
  // NOT_FOUND when already gone; FAILED_PRECONDITION when it has children.
  virtual absl::Status DeleteTimeline(const std::string& tenant_id,
                                      const std::string& timeline_id) = 0;
  // Resets a child timeline to its parent's head; returns the new branch point.
  virtual absl::StatusOr<uint64_t> ResetTimeline(const std::string& tenant_id,
                                                 const std::string& timeline_id) = 0;
  // Rewinds a timeline (a root too) to `lsn` of its own history in one step: the current state
  // becomes timeline `backup_id` (which adopts the children and becomes the timeline's parent);
  // the timeline keeps its id. OUT_OF_RANGE outside its own history, ALREADY_EXISTS when
  // `backup_id` is taken.
  virtual absl::Status RewindTimeline(const std::string& tenant_id, const std::string& timeline_id,
                                      uint64_t lsn, const std::string& backup_id) = 0;
  virtual absl::Status SetRetention(const std::string& tenant_id, const std::string& timeline_id,
                                    std::optional<absl::Duration> window,
                                    std::optional<uint64_t> bytes) = 0;

  // The newest LSN committed at or before `at` (OUT_OF_RANGE before the oldest readable point),
  // and the commit time of an LSN (OUT_OF_RANGE outside [oldest readable, head]).
  // UNIMPLEMENTED by default: start points are then checked only by CreateTimeline itself.
  virtual absl::StatusOr<uint64_t> LsnForTimestamp(const std::string& tenant_id,
                                                   const std::string& timeline_id, absl::Time at) {
    return absl::UnimplementedError("LsnForTimestamp");
  }
  virtual absl::StatusOr<absl::Time> TimestampForLsn(const std::string& tenant_id,
                                                     const std::string& timeline_id, uint64_t lsn) {
    return absl::UnimplementedError("TimestampForLsn");
  }
};

}  // namespace pgbranch::control
