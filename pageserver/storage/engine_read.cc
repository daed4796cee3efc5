// Read paths of the engine: point reads, range scans, LSN/time lookups and info.
#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/status_macros.h"
#include "pageserver/storage/engine.h"

namespace pgbranch::storage {
namespace {

std::string FormatMicros(int64_t micros) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::FromUnixMicros(micros),
                          absl::UTCTimeZone());
}

}  // namespace

absl::Status Engine::CheckReadableLsn(const Timeline* tl, uint64_t lsn) const {
  if (lsn > tl->head_lsn) {
    return absl::OutOfRangeError(absl::StrCat("LSN ", lsn, " is above the head LSN ", tl->head_lsn,
                                              " of timeline ", tl->timeline_id,
                                              "; read at or below the head (0 means the head)"));
  }
  if (lsn < tl->gc_cutoff) {
    return absl::OutOfRangeError(
        absl::StrCat("LSN ", lsn, " is below the oldest readable LSN ", tl->gc_cutoff,
                     " of timeline ", tl->timeline_id,
                     "; its history was garbage-collected (raise the retention window "
                     "or take a lease to keep history readable)"));
  }
  return absl::OkStatus();
}

const VersionRef* Engine::Resolve(const Timeline* tl, uint64_t lsn, std::string_view key,
                                  const Timeline** owner) const {
  // A child's own versions are all above its branch point, so once the walk leaves a timeline it
  // reads the ancestor at min(lsn, branch point). Each level is one hash probe.
  for (const Timeline* t = tl; t != nullptr; t = t->ancestor) {
    if (const Timeline::Versions* v = t->Find(key)) {
      if (const VersionRef* r = Timeline::NewestAtOrBelow(*v, lsn)) {
        *owner = t;
        return r;
      }
    }
    lsn = std::min(lsn, t->ancestor_lsn);
  }
  return nullptr;
}

absl::Status Engine::ReadVersion(const Timeline* owner, const VersionRef& v,
                                 std::string* out) const {
  if (owner->active && owner->active->id() == v.layer) {
    owner->active->Read(v.offset, v.len, out);
    return absl::OkStatus();
  }
  if (auto f = owner->frozen.find(v.layer); f != owner->frozen.end()) {
    f->second->Read(v.offset, v.len, out);
    return absl::OkStatus();
  }
  auto it = owner->layers.find(v.layer);
  if (it == owner->layers.end()) {
    return absl::InternalError(
        absl::StrCat("layer ", v.layer, " of timeline ", owner->timeline_id, " is missing"));
  }
  return it->second->ReadValue(v.offset, v.len, v.crc, out);
}

absl::StatusOr<ReadResult> Engine::Read(const std::string& tenant_id,
                                        const std::string& timeline_id, uint64_t lsn,
                                        const std::vector<std::string>& keys) {
  absl::ReaderMutexLock l(&mu_);
  PGB_ASSIGN_OR_RETURN(Timeline * tl, FindTimeline(tenant_id, timeline_id));
  if (lsn == 0) lsn = tl->head_lsn;
  PGB_RETURN_IF_ERROR(CheckReadableLsn(tl, lsn));
  ReadResult result;
  result.lsn = lsn;
  result.values.resize(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    const Timeline* owner = nullptr;
    const VersionRef* v = Resolve(tl, lsn, keys[i], &owner);
    if (v == nullptr || v->tombstone()) continue;
    if (!owner->broken.empty()) return absl::DataLossError(owner->broken);
    result.values[i].found = true;
    PGB_RETURN_IF_ERROR(ReadVersion(owner, *v, &result.values[i].data));
  }
  return result;
}

absl::StatusOr<ScanResult> Engine::Scan(const std::string& tenant_id,
                                        const std::string& timeline_id, uint64_t lsn,
                                        const std::string& start, const std::string& end,
                                        uint32_t limit, bool keys_only) {
  if (limit == 0) limit = 1000;
  absl::ReaderMutexLock l(&mu_);
  PGB_ASSIGN_OR_RETURN(Timeline * tl, FindTimeline(tenant_id, timeline_id));
  if (lsn == 0) lsn = tl->head_lsn;
  PGB_RETURN_IF_ERROR(CheckReadableLsn(tl, lsn));

  // The levels of the ancestry with the LSN each is read at.
  std::vector<std::pair<const Timeline*, uint64_t>> levels;
  uint64_t cap = lsn;
  for (const Timeline* t = tl; t != nullptr; t = t->ancestor) {
    levels.push_back({t, cap});
    cap = std::min(cap, t->ancestor_lsn);
  }

  ScanResult result;
  result.lsn = lsn;
  std::string cursor = start;
  const size_t per_level = std::max<size_t>(limit, 64);
  while (true) {
    // Gather candidates from every level. A level cut off at `per_level` keys only vouches for
    // keys up to its last one, so the merged order is complete up to the smallest such key.
    std::set<std::string_view> candidates;
    std::optional<std::string_view> bound;
    for (const auto& [t, at] : levels) {
      size_t n = 0;
      auto it = t->keys().lower_bound(cursor);
      for (; it != t->keys().end(); ++it) {
        if (!end.empty() && it->first >= end) break;
        if (it->second.front().lsn > at) continue;
        if (n == per_level) {
          if (!bound || it->first < *bound) bound = it->first;
          break;
        }
        candidates.insert(it->first);
        ++n;
      }
    }
    for (std::string_view key : candidates) {
      if (bound && key >= *bound) break;
      const Timeline* owner = nullptr;
      const VersionRef* v = Resolve(tl, lsn, key, &owner);
      if (v == nullptr || v->tombstone()) continue;
      if (result.entries.size() == limit) {
        result.more = true;
        return result;
      }
      ScanEntry e;
      e.key = std::string(key);
      if (!keys_only) PGB_RETURN_IF_ERROR(ReadVersion(owner, *v, &e.value));
      result.entries.push_back(std::move(e));
    }
    if (!bound) break;
    cursor = std::string(*bound);
  }
  return result;
}

absl::StatusOr<uint64_t> LsnAtTime(const Timeline& tl, int64_t micros) {
  const auto& pts = tl.points;
  auto it = std::upper_bound(pts.begin(), pts.end(), micros,
                             [](int64_t t, const LsnPoint& p) { return t < p.time_micros; });
  if (it == pts.begin()) {
    return absl::OutOfRangeError(absl::StrCat(
        "time ", FormatMicros(micros), " is before the oldest readable point of timeline ",
        tl.timeline_id, " (", FormatMicros(pts.front().time_micros), ", LSN ", pts.front().lsn,
        "); pick a later time"));
  }
  return (it - 1)->lsn;
}

absl::StatusOr<uint64_t> Engine::LsnForTimestamp(const std::string& tenant_id,
                                                 const std::string& timeline_id, int64_t micros) {
  absl::ReaderMutexLock l(&mu_);
  PGB_ASSIGN_OR_RETURN(Timeline * tl, FindTimeline(tenant_id, timeline_id));
  return LsnAtTime(*tl, micros);
}

absl::StatusOr<int64_t> Engine::TimestampForLsn(const std::string& tenant_id,
                                                const std::string& timeline_id, uint64_t lsn) {
  absl::ReaderMutexLock l(&mu_);
  PGB_ASSIGN_OR_RETURN(Timeline * tl, FindTimeline(tenant_id, timeline_id));
  PGB_RETURN_IF_ERROR(CheckReadableLsn(tl, lsn));
  const LsnPoint* p = tl->PointAtOrBelow(lsn);
  if (p == nullptr) return absl::OutOfRangeError("no commit time is known for that LSN");
  return p->time_micros;
}

TimelineInfo Engine::MakeInfo(const Timeline* tl) const {
  TimelineInfo info;
  info.tenant_id = tl->tenant_id;
  info.timeline_id = tl->timeline_id;
  if (tl->ancestor != nullptr) info.ancestor_id = tl->ancestor->timeline_id;
  info.ancestor_lsn = tl->ancestor_lsn;
  info.head_lsn = tl->head_lsn;
  info.oldest_readable_lsn = tl->gc_cutoff;
  if (!tl->points.empty()) {
    info.logical_size = tl->points.back().logical_size;
    info.head_time_micros = tl->points.back().time_micros;
  }
  info.diverged_bytes = tl->diverged_bytes;
  info.generation = tl->generation;
  info.created_micros = tl->created_micros;
  info.retention = tl->retention;
  for (const Timeline* c : tl->children) info.children.push_back(c->timeline_id);
  std::sort(info.children.begin(), info.children.end());
  info.layer_files = static_cast<uint32_t>(tl->layers.size());
  return info;
}

absl::StatusOr<TimelineInfo> Engine::GetTimeline(const std::string& tenant_id,
                                                 const std::string& timeline_id) {
  absl::ReaderMutexLock l(&mu_);
  PGB_ASSIGN_OR_RETURN(Timeline * tl, FindTimeline(tenant_id, timeline_id));
  return MakeInfo(tl);
}

absl::StatusOr<std::vector<TimelineInfo>> Engine::ListTimelines(const std::string& tenant_id) {
  absl::ReaderMutexLock l(&mu_);
  if (tenants_.count(tenant_id) == 0) {
    return absl::NotFoundError(
        absl::StrCat("tenant ", tenant_id, " not found; list tenants with `pagectl tenant list`"));
  }
  std::vector<TimelineInfo> out;
  for (const auto& [id, tl] : timelines_) {
    if (tl->tenant_id == tenant_id) out.push_back(MakeInfo(tl.get()));
  }
  std::sort(out.begin(), out.end(), [](const TimelineInfo& a, const TimelineInfo& b) {
    return std::tie(a.created_micros, a.timeline_id) < std::tie(b.created_micros, b.timeline_id);
  });
  return out;
}

std::vector<TenantInfo> Engine::ListTenants() {
  absl::ReaderMutexLock l(&mu_);
  std::vector<TenantInfo> out;
  for (const auto& [id, created] : tenants_) {
    TenantInfo t;
    t.tenant_id = id;
    t.created_micros = created;
    int64_t oldest_root = INT64_MAX;
    for (const auto& [tid, tl] : timelines_) {
      if (tl->tenant_id != id) continue;
      ++t.timeline_count;
      if (tl->ancestor == nullptr && tl->created_micros < oldest_root) {
        oldest_root = tl->created_micros;
        t.root_timeline_id = tl->timeline_id;
      }
    }
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace pgbranch::storage
