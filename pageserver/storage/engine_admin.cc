// Metadata operations of the engine: tenants, timelines, writers, reset, retention, leases.
// Each validates under the state lock, then logs and applies one or more records as the sole
// mutator.
#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/coding.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "pageserver/storage/engine.h"
#include "pageserver/storage/storage.pb.h"

namespace pgbranch::storage {
namespace {

absl::Status ValidateId(const std::string& what, const std::string& id) {
  bool ok = !id.empty() && id.size() <= 64 && absl::ascii_isalnum(id[0]);
  for (char c : id) ok = ok && (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.');
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " id '", id,
                     "' is invalid: use 1-64 letters, digits, '-', '_' or '.', starting "
                     "with a letter or digit (or omit it to get a generated id)"));
  }
  return absl::OkStatus();
}

void FillMeta(const Timeline& tl, pb::TimelineMeta* m) {
  m->set_tenant_id(tl.tenant_id);
  m->set_timeline_id(tl.timeline_id);
  if (tl.ancestor != nullptr) m->set_ancestor_id(tl.ancestor->timeline_id);
  m->set_ancestor_lsn(tl.ancestor_lsn);
  m->set_head_lsn(tl.head_lsn);
  m->set_generation(tl.generation);
  m->set_gc_cutoff(tl.gc_cutoff);
  m->mutable_retention()->set_history_seconds(tl.retention.history_seconds);
  m->mutable_retention()->set_history_bytes(tl.retention.history_bytes);
  m->set_created_micros(tl.created_micros);
  for (const Lease& l : tl.leases) {
    pb::Lease* pl = m->add_leases();
    pl->set_lsn(l.lsn);
    pl->set_expires_micros(l.expires_micros);
  }
  for (const LsnPoint& p : tl.points) {
    m->add_point_lsn(p.lsn);
    m->add_point_time(p.time_micros);
    m->add_point_bytes(p.bytes);
    m->add_point_size(p.logical_size);
  }
  for (const auto& [id, layer] : tl.layers) m->add_layer_ids(id);
}

}  // namespace

// Shared with engine_maintenance.cc through this declaration.
void FillTimelineMeta(const Timeline& tl, pb::TimelineMeta* m) { FillMeta(tl, m); }

absl::StatusOr<TenantInfo> Engine::CreateTenant(const std::string& tenant_id_in,
                                                const std::string& root_id_in) {
  std::string tenant_id = tenant_id_in.empty() ? NewId() : tenant_id_in;
  std::string root_id = root_id_in.empty() ? NewId() : root_id_in;
  PGB_RETURN_IF_ERROR(ValidateId("tenant", tenant_id));
  PGB_RETURN_IF_ERROR(ValidateId("timeline", root_id));
  TenantInfo info;
  absl::Status s = RunExclusive([&]() -> absl::Status {
    int64_t now = clock_->NowMicros();
    {
      absl::ReaderMutexLock l(&mu_);
      if (tenants_.count(tenant_id)) {
        return absl::AlreadyExistsError(absl::StrCat("tenant ", tenant_id, " already exists"));
      }
      if (timelines_.count(TimelineKey(tenant_id, root_id))) {
        return absl::AlreadyExistsError(absl::StrCat("timeline ", root_id, " already exists"));
      }
    }
    std::vector<pb::LogRecord> records(2);
    records[0].mutable_create_tenant()->set_tenant_id(tenant_id);
    records[0].mutable_create_tenant()->set_created_micros(now);
    Timeline root;
    root.tenant_id = tenant_id;
    root.timeline_id = root_id;
    root.created_micros = now;
    root.retention = options_.default_retention;
    root.points.push_back({0, now, 0, 0});
    FillMeta(root, records[1].mutable_create_timeline());
    PGB_RETURN_IF_ERROR(LogAndApply(records));
    info = {tenant_id, root_id, now, 1};
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  LogInfo("Created tenant", {{"tenant", tenant_id}, {"timeline", root_id}});
  return info;
}

absl::Status Engine::DeleteTenant(const std::string& tenant_id) {
  absl::Status s = RunExclusive([&]() -> absl::Status {
    {
      absl::ReaderMutexLock l(&mu_);
      if (tenants_.count(tenant_id) == 0) {
        return absl::NotFoundError(absl::StrCat("tenant ", tenant_id, " not found"));
      }
    }
    pb::LogRecord record;
    record.set_delete_tenant(tenant_id);
    return LogAndApply({record});
  });
  if (s.ok()) LogInfo("Deleted tenant", {{"tenant", tenant_id}});
  return s;
}

absl::StatusOr<TimelineInfo> Engine::CreateTimeline(const CreateTimelineOptions& opts) {
  std::string id = opts.timeline_id.empty() ? NewId() : opts.timeline_id;
  PGB_RETURN_IF_ERROR(ValidateId("timeline", id));
  TimelineInfo info;
  absl::Status s = RunExclusive([&]() -> absl::Status {
    int64_t now = clock_->NowMicros();
    Timeline tl;
    tl.tenant_id = opts.tenant_id;
    tl.timeline_id = id;
    tl.created_micros = now;
    tl.retention = opts.retention.value_or(options_.default_retention);
    pb::LogRecord record;
    {
      absl::ReaderMutexLock l(&mu_);
      if (tenants_.count(opts.tenant_id) == 0) {
        return absl::NotFoundError(absl::StrCat(
            "tenant ", opts.tenant_id, " not found; list tenants with `pagectl tenant list`"));
      }
      if (timelines_.count(TimelineKey(opts.tenant_id, id))) {
        return absl::AlreadyExistsError(absl::StrCat("timeline ", id, " already exists"));
      }
      if (opts.ancestor_id.empty()) {
        tl.points.push_back({0, now, 0, 0});
      } else {
        PGB_ASSIGN_OR_RETURN(Timeline * parent, FindTimeline(opts.tenant_id, opts.ancestor_id));
        uint64_t lsn = opts.ancestor_lsn == 0 ? parent->head_lsn : opts.ancestor_lsn;
        if (opts.at_micros.has_value()) {
          PGB_ASSIGN_OR_RETURN(lsn, LsnAtTime(*parent, *opts.at_micros));
        }
        PGB_RETURN_IF_ERROR(CheckReadableLsn(parent, lsn));
        const LsnPoint* p = parent->PointAtOrBelow(lsn);
        tl.ancestor_lsn = lsn;
        tl.head_lsn = lsn;
        tl.gc_cutoff = lsn;
        if (!opts.retention.has_value()) tl.retention = parent->retention;
        tl.points.push_back({lsn, now, 0, p ? p->logical_size : 0});
        tl.ancestor = parent;
      }
      FillMeta(tl, record.mutable_create_timeline());
    }
    PGB_RETURN_IF_ERROR(LogAndApply({record}));
    absl::ReaderMutexLock l(&mu_);
    info = MakeInfo(timelines_.at(TimelineKey(opts.tenant_id, id)).get());
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  LogInfo("Created timeline", {{"tenant", opts.tenant_id},
                               {"timeline", id},
                               {"ancestor", info.ancestor_id},
                               {"ancestor_lsn", std::to_string(info.ancestor_lsn)}});
  return info;
}

absl::Status Engine::DeleteTimeline(const std::string& tenant_id, const std::string& timeline_id) {
  absl::Status s = RunExclusive([&]() -> absl::Status {
    {
      absl::ReaderMutexLock l(&mu_);
      PGB_ASSIGN_OR_RETURN(Timeline * tl, FindTimeline(tenant_id, timeline_id));
      if (!tl->children.empty()) {
        std::vector<std::string> names;
        for (const Timeline* c : tl->children) names.push_back(c->timeline_id);
        std::sort(names.begin(), names.end());
        return absl::FailedPreconditionError(
            absl::StrCat("timeline ", timeline_id, " has child branches (",
                         absl::StrJoin(names, ", "), "); delete them first"));
      }
    }
    pb::LogRecord record;
    record.mutable_delete_timeline()->set_tenant_id(tenant_id);
    record.mutable_delete_timeline()->set_timeline_id(timeline_id);
    return LogAndApply({record});
  });
  if (s.ok()) LogInfo("Deleted timeline", {{"tenant", tenant_id}, {"timeline", timeline_id}});
  return s;
}

void Engine::DeleteTimelineLocked(Timeline* tl) {
  // Children first (a tenant delete removes the whole tree).
  while (!tl->children.empty()) DeleteTimelineLocked(tl->children.back());
  if (tl->ancestor != nullptr) {
    auto& siblings = tl->ancestor->children;
    siblings.erase(std::remove(siblings.begin(), siblings.end(), tl), siblings.end());
  }
  // Layer files become orphans and are removed after the next manifest.
  timelines_.erase(TimelineKey(tl->tenant_id, tl->timeline_id));
}

absl::StatusOr<uint64_t> Engine::AcquireWriter(const std::string& tenant_id,
                                               const std::string& timeline_id) {
  uint64_t generation = 0;
  absl::Status s = RunExclusive([&]() -> absl::Status {
    pb::LogRecord record;
    {
      absl::ReaderMutexLock l(&mu_);
      PGB_ASSIGN_OR_RETURN(Timeline * tl, FindTimeline(tenant_id, timeline_id));
      generation = tl->generation + 1;
    }
    record.mutable_set_generation()->set_tenant_id(tenant_id);
    record.mutable_set_generation()->set_timeline_id(timeline_id);
    record.mutable_set_generation()->set_generation(generation);
    return LogAndApply({record});
  });
  if (!s.ok()) return s;
  LogInfo("Acquired writer", {{"tenant", tenant_id},
                              {"timeline", timeline_id},
                              {"generation", std::to_string(generation)}});
  return generation;
}

absl::StatusOr<ResetResult> Engine::ResetTimeline(const std::string& tenant_id,
                                                  const std::string& timeline_id,
                                                  const std::string& backup_id) {
  if (!backup_id.empty()) PGB_RETURN_IF_ERROR(ValidateId("backup timeline", backup_id));
  ResetResult result;
  absl::Status s = RunExclusive([&]() -> absl::Status {
    pb::LogRecord record;
    {
      absl::ReaderMutexLock l(&mu_);
      PGB_ASSIGN_OR_RETURN(Timeline * tl, FindTimeline(tenant_id, timeline_id));
      if (tl->ancestor == nullptr) {
        return absl::FailedPreconditionError(
            absl::StrCat("timeline ", timeline_id,
                         " is a root timeline; only a child can be reset to its "
                         "parent"));
      }
      if (!backup_id.empty() && timelines_.count(TimelineKey(tenant_id, backup_id))) {
        return absl::AlreadyExistsError(absl::StrCat("timeline ", backup_id, " already exists"));
      }
      if (backup_id.empty() && !tl->children.empty()) {
        std::vector<std::string> names;
        for (const Timeline* c : tl->children) names.push_back(c->timeline_id);
        return absl::FailedPreconditionError(absl::StrCat(
            "timeline ", timeline_id, " has child branches (", absl::StrJoin(names, ", "),
            "); reset with a backup timeline to keep them, or delete them first"));
      }
      pb::Reset* r = record.mutable_reset();
      r->set_tenant_id(tenant_id);
      r->set_timeline_id(timeline_id);
      r->set_backup_id(backup_id);
      r->set_time_micros(clock_->NowMicros());
      r->set_generation(tl->generation + 1);
      r->set_ancestor_lsn(tl->ancestor->head_lsn);
      result = {tl->ancestor->head_lsn, backup_id, tl->generation + 1};
    }
    return LogAndApply({record});
  });
  if (!s.ok()) return s;
  LogInfo("Reset timeline to its parent's head",
          {{"tenant", tenant_id},
           {"timeline", timeline_id},
           {"ancestor_lsn", std::to_string(result.ancestor_lsn)},
           {"backup", backup_id}});
  return result;
}

absl::StatusOr<ResetResult> Engine::RewindTimeline(const std::string& tenant_id,
                                                   const std::string& timeline_id, uint64_t lsn,
                                                   const std::string& backup_id) {
  if (backup_id.empty()) {
    return absl::InvalidArgumentError("a rewind needs a backup timeline for the current state");
  }
  PGB_RETURN_IF_ERROR(ValidateId("backup timeline", backup_id));
  ResetResult result;
  absl::Status s = RunExclusive([&]() -> absl::Status {
    pb::LogRecord record;
    {
      absl::ReaderMutexLock l(&mu_);
      PGB_ASSIGN_OR_RETURN(Timeline * tl, FindTimeline(tenant_id, timeline_id));
      if (timelines_.count(TimelineKey(tenant_id, backup_id))) {
        return absl::AlreadyExistsError(absl::StrCat("timeline ", backup_id, " already exists"));
      }
      if (lsn < tl->ancestor_lsn || lsn > tl->head_lsn) {
        return absl::OutOfRangeError(absl::StrCat("LSN ", lsn, " is outside timeline ", timeline_id,
                                                  "'s own history [", tl->ancestor_lsn, ", ",
                                                  tl->head_lsn, "]"));
      }
      PGB_RETURN_IF_ERROR(CheckReadableLsn(tl, lsn));
      pb::Reset* r = record.mutable_reset();
      r->set_tenant_id(tenant_id);
      r->set_timeline_id(timeline_id);
      r->set_backup_id(backup_id);
      r->set_time_micros(clock_->NowMicros());
      r->set_generation(tl->generation + 1);
      r->set_ancestor_lsn(lsn);
      r->set_rewind(true);
      result = {lsn, backup_id, tl->generation + 1};
    }
    return LogAndApply({record});
  });
  if (!s.ok()) return s;
  LogInfo("Rewound timeline into its own history", {{"tenant", tenant_id},
                                                    {"timeline", timeline_id},
                                                    {"lsn", std::to_string(lsn)},
                                                    {"backup", backup_id}});
  return result;
}

absl::StatusOr<TimelineInfo> Engine::SetRetention(const std::string& tenant_id,
                                                  const std::string& timeline_id,
                                                  const Retention& retention) {
  TimelineInfo info;
  absl::Status s = RunExclusive([&]() -> absl::Status {
    {
      absl::ReaderMutexLock l(&mu_);
      PGB_RETURN_IF_ERROR(FindTimeline(tenant_id, timeline_id).status());
    }
    pb::LogRecord record;
    record.mutable_set_retention()->set_tenant_id(tenant_id);
    record.mutable_set_retention()->set_timeline_id(timeline_id);
    record.mutable_set_retention()->mutable_retention()->set_history_seconds(
        retention.history_seconds);
    record.mutable_set_retention()->mutable_retention()->set_history_bytes(retention.history_bytes);
    PGB_RETURN_IF_ERROR(LogAndApply({record}));
    absl::ReaderMutexLock l(&mu_);
    info = MakeInfo(timelines_.at(TimelineKey(tenant_id, timeline_id)).get());
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return info;
}

absl::Status Engine::AddLease(const std::string& tenant_id, const std::string& timeline_id,
                              uint64_t lsn, int64_t ttl_seconds) {
  if (ttl_seconds <= 0) return absl::InvalidArgumentError("a lease needs a positive TTL");
  return RunExclusive([&]() -> absl::Status {
    {
      absl::ReaderMutexLock l(&mu_);
      PGB_ASSIGN_OR_RETURN(Timeline * tl, FindTimeline(tenant_id, timeline_id));
      PGB_RETURN_IF_ERROR(CheckReadableLsn(tl, lsn));
    }
    pb::LogRecord record;
    record.mutable_add_lease()->set_tenant_id(tenant_id);
    record.mutable_add_lease()->set_timeline_id(timeline_id);
    record.mutable_add_lease()->mutable_lease()->set_lsn(lsn);
    record.mutable_add_lease()->mutable_lease()->set_expires_micros(clock_->NowMicros() +
                                                                    ttl_seconds * 1'000'000);
    return LogAndApply({record});
  });
}

absl::Status Engine::ApplyRewindLocked(Timeline* tl, const pb::Reset& r) {
  if (timelines_.count(TimelineKey(r.tenant_id(), r.backup_id()))) {
    return absl::DataLossError("log: rewind into an existing backup timeline");
  }
  // The backup takes the timeline's place in the tree (same ancestor, data, history, children);
  // the timeline becomes an empty child of it at the LSN rewound to.
  auto backup = std::make_unique<Timeline>();
  Timeline* b = backup.get();
  b->tenant_id = tl->tenant_id;
  b->timeline_id = r.backup_id();
  b->ancestor = tl->ancestor;
  b->ancestor_lsn = tl->ancestor_lsn;
  b->head_lsn = tl->head_lsn;
  b->gc_cutoff = tl->gc_cutoff;
  b->created_micros = tl->created_micros;  // the root's age orders roots (engine_read.cc)
  b->retention = tl->retention;
  b->leases = tl->leases;
  b->points = tl->points;
  b->TakeDataFrom(*tl);
  b->children = std::move(tl->children);
  tl->children.clear();
  b->children.push_back(tl);
  for (Timeline* c : b->children) c->ancestor = b;
  if (b->ancestor != nullptr) {
    std::replace(b->ancestor->children.begin(), b->ancestor->children.end(), tl, b);
  }
  const LsnPoint* p = b->PointAtOrBelow(r.ancestor_lsn());
  tl->ancestor = b;
  tl->ancestor_lsn = r.ancestor_lsn();
  tl->head_lsn = r.ancestor_lsn();
  tl->gc_cutoff = r.ancestor_lsn();
  tl->generation = r.generation();
  tl->leases.clear();
  tl->points = {{r.ancestor_lsn(), r.time_micros(), 0, p ? p->logical_size : 0}};
  timelines_[TimelineKey(r.tenant_id(), r.backup_id())] = std::move(backup);
  return absl::OkStatus();
}

absl::Status Engine::ApplyRecord(const pb::LogRecord& record, bool replay) {
  auto find = [&](const std::string& tenant, const std::string& id) -> absl::StatusOr<Timeline*> {
    auto it = timelines_.find(TimelineKey(tenant, id));
    if (it == timelines_.end()) {
      return absl::DataLossError(absl::StrCat("log names unknown timeline ", tenant, "/", id));
    }
    return it->second.get();
  };
  switch (record.op_case()) {
    case pb::LogRecord::kCommit: {
      const pb::Commit& c = record.commit();
      PGB_ASSIGN_OR_RETURN(Timeline * tl, find(c.tenant_id(), c.timeline_id()));
      if (replay && c.lsn() != tl->head_lsn + 1) {
        return absl::DataLossError(absl::StrCat("log replay: timeline ", c.timeline_id(),
                                                " expected LSN ", tl->head_lsn + 1, " got ",
                                                c.lsn()));
      }
      // Views into the record (no copy of a value but the memtable's).
      std::vector<MutationView> mutations;
      std::vector<uint32_t> crcs;
      mutations.reserve(c.mutations_size());
      crcs.reserve(c.mutations_size());
      for (const auto& m : c.mutations()) {
        mutations.push_back({m.key(), m.value(), m.tombstone()});
        crcs.push_back(m.tombstone() ? 0 : Crc32(m.value()));
      }
      ApplyCommit(tl, c.lsn(), c.time_micros(), mutations.data(), mutations.size(), crcs.data());
      return absl::OkStatus();
    }
    case pb::LogRecord::kCreateTenant:
      tenants_[record.create_tenant().tenant_id()] = record.create_tenant().created_micros();
      return absl::OkStatus();
    case pb::LogRecord::kDeleteTenant: {
      const std::string& id = record.delete_tenant();
      std::vector<Timeline*> roots;
      for (auto& [tid, tl] : timelines_) {
        if (tl->tenant_id == id && tl->ancestor == nullptr) roots.push_back(tl.get());
      }
      for (Timeline* r : roots) DeleteTimelineLocked(r);
      tenants_.erase(id);
      return absl::OkStatus();
    }
    case pb::LogRecord::kCreateTimeline: {
      const pb::TimelineMeta& m = record.create_timeline();
      auto tl = std::make_unique<Timeline>();
      tl->tenant_id = m.tenant_id();
      tl->timeline_id = m.timeline_id();
      tl->ancestor_lsn = m.ancestor_lsn();
      tl->head_lsn = m.head_lsn();
      tl->gc_cutoff = m.gc_cutoff();
      tl->created_micros = m.created_micros();
      tl->retention = {m.retention().history_seconds(), m.retention().history_bytes()};
      for (int i = 0; i < m.point_lsn_size(); ++i) {
        tl->points.push_back({m.point_lsn(i), m.point_time(i), m.point_bytes(i), m.point_size(i)});
      }
      if (!m.ancestor_id().empty()) {
        PGB_ASSIGN_OR_RETURN(Timeline * parent, find(m.tenant_id(), m.ancestor_id()));
        tl->ancestor = parent;
        parent->children.push_back(tl.get());
      }
      timelines_[TimelineKey(m.tenant_id(), m.timeline_id())] = std::move(tl);
      return absl::OkStatus();
    }
    case pb::LogRecord::kDeleteTimeline: {
      PGB_ASSIGN_OR_RETURN(Timeline * tl, find(record.delete_timeline().tenant_id(),
                                               record.delete_timeline().timeline_id()));
      DeleteTimelineLocked(tl);
      return absl::OkStatus();
    }
    case pb::LogRecord::kSetGeneration: {
      PGB_ASSIGN_OR_RETURN(Timeline * tl, find(record.set_generation().tenant_id(),
                                               record.set_generation().timeline_id()));
      tl->generation = record.set_generation().generation();
      return absl::OkStatus();
    }
    case pb::LogRecord::kReset: {
      const pb::Reset& r = record.reset();
      PGB_ASSIGN_OR_RETURN(Timeline * tl, find(r.tenant_id(), r.timeline_id()));
      if (r.rewind()) return ApplyRewindLocked(tl, r);
      Timeline* parent = tl->ancestor;
      if (parent == nullptr) return absl::DataLossError("log: reset of a root timeline");
      if (!r.backup_id().empty()) {
        auto backup = std::make_unique<Timeline>();
        Timeline* b = backup.get();
        b->tenant_id = tl->tenant_id;
        b->timeline_id = r.backup_id();
        b->ancestor = parent;
        b->ancestor_lsn = tl->ancestor_lsn;
        b->head_lsn = tl->head_lsn;
        b->gc_cutoff = tl->gc_cutoff;
        b->created_micros = r.time_micros();
        b->retention = tl->retention;
        b->leases = tl->leases;
        b->points = tl->points;
        b->TakeDataFrom(*tl);
        b->children = std::move(tl->children);
        tl->children.clear();
        for (Timeline* c : b->children) c->ancestor = b;
        parent->children.push_back(b);
        timelines_[TimelineKey(r.tenant_id(), r.backup_id())] = std::move(backup);
      } else {
        tl->ClearIndex();
        tl->DropMem();
        tl->layers.clear();
      }
      const LsnPoint* p = parent->PointAtOrBelow(r.ancestor_lsn());
      tl->ancestor_lsn = r.ancestor_lsn();
      tl->head_lsn = r.ancestor_lsn();
      tl->gc_cutoff = r.ancestor_lsn();
      tl->generation = r.generation();
      tl->leases.clear();
      tl->points = {{r.ancestor_lsn(), r.time_micros(), 0, p ? p->logical_size : 0}};
      return absl::OkStatus();
    }
    case pb::LogRecord::kSetRetention: {
      PGB_ASSIGN_OR_RETURN(Timeline * tl, find(record.set_retention().tenant_id(),
                                               record.set_retention().timeline_id()));
      tl->retention = {record.set_retention().retention().history_seconds(),
                       record.set_retention().retention().history_bytes()};
      return absl::OkStatus();
    }
    case pb::LogRecord::kAddLease: {
      PGB_ASSIGN_OR_RETURN(Timeline * tl,
                           find(record.add_lease().tenant_id(), record.add_lease().timeline_id()));
      tl->leases.push_back(
          {record.add_lease().lease().lsn(), record.add_lease().lease().expires_micros()});
      return absl::OkStatus();
    }
    case pb::LogRecord::OP_NOT_SET:
      break;
  }
  return absl::DataLossError("log holds a record of an unknown kind");
}

}  // namespace pgbranch::storage
