#include "operator/control/start_point.h"

#include "absl/strings/str_cat.h"
#include "operator/model/field_error.h"
#include "operator/model/json.h"

namespace pgbranch::control {
namespace {

absl::Status OutOfRange(const StartPoint& p, const char* field, const std::string& detail) {
  return FieldError(absl::StatusCode::kInvalidArgument, p.object, field, detail,
                    kReasonStartPointOutOfRange);
}

// "LSN 12 (2026-11-29T21:03:11Z)", or just the LSN when its time is not known.
std::string Describe(TimelineService* timelines, const StartPoint& p, uint64_t lsn) {
  auto t = timelines->TimestampForLsn(p.tenant_id, p.timeline_id, lsn);
  if (!t.ok()) return absl::StrCat("LSN ", lsn);
  return absl::StrCat(Rfc3339Seconds(*t), ", LSN ", lsn);
}

}  // namespace

absl::Status CheckStartPoint(TimelineService* timelines, const StartPoint& p, absl::Time now) {
  const bool by_lsn = p.lsn && *p.lsn != 0;
  if (!by_lsn && !p.at) return absl::OkStatus();
  absl::StatusOr<TimelineInfo> info = timelines->GetTimeline(p.tenant_id, p.timeline_id);
  if (!info.ok()) return info.status();
  // Why nothing older is readable: the source starts there (its branch point, or its creation
  // as a root), or its older history was garbage-collected.
  const std::string why =
      info->oldest_readable_lsn > info->ancestor_lsn
          ? absl::StrCat("; older history of ", p.source,
                         " was garbage-collected (a longer retention window on ", p.source,
                         " keeps more)")
          : absl::StrCat("; ", p.source, " begins there");
  if (by_lsn) {
    if (*p.lsn > info->head_lsn) {
      return OutOfRange(
          p, "spec.lsn",
          absl::StrCat("LSN ", *p.lsn, " is after the head of ", p.source, " (LSN ", info->head_lsn,
                       "); pgbranch LSNs number ", p.source,
                       "'s commits at the pageserver (see `pgbranch branch get ", p.source,
                       "`), they are not PostgreSQL WAL positions such as pg_current_wal_lsn()"));
    }
    if (*p.lsn < info->oldest_readable_lsn) {
      return OutOfRange(
          p, "spec.lsn",
          absl::StrCat("LSN ", *p.lsn, " is before the oldest point ", p.source,
                       " can still be read (", Describe(timelines, p, info->oldest_readable_lsn),
                       ")", why, "; pick a later LSN"));
    }
    return absl::OkStatus();
  }
  if (*p.at > now) {
    return OutOfRange(
        p, "spec.timestamp",
        absl::StrCat(Rfc3339Seconds(*p.at), " is in the future (it is now ", Rfc3339Seconds(now),
                     "); pick a past time, or leave it out to start at the head"));
  }
  absl::StatusOr<uint64_t> lsn = timelines->LsnForTimestamp(p.tenant_id, p.timeline_id, *p.at);
  if (absl::IsUnimplemented(lsn.status())) return absl::OkStatus();
  if (absl::IsOutOfRange(lsn.status()) || (lsn.ok() && *lsn < info->oldest_readable_lsn)) {
    return OutOfRange(
        p, "spec.timestamp",
        absl::StrCat(Rfc3339Seconds(*p.at), " is before the oldest point ", p.source,
                     " can still be read (", Describe(timelines, p, info->oldest_readable_lsn), ")",
                     why, "; pick a later time"));
  }
  return lsn.status();
}

}  // namespace pgbranch::control
