// Maintenance: checkpoints (in-memory layers to layer files + manifest), compaction, GC.
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "pageserver/storage/engine.h"
#include "pageserver/storage/storage.pb.h"

namespace pgbranch::storage {

void FillTimelineMeta(const Timeline& tl, pb::TimelineMeta* m);  // engine_admin.cc

absl::Status Engine::Checkpoint() {
  return RunExclusive([this] { return CheckpointLocked(); });
}

absl::Status Engine::CheckpointLocked(bool force) {
  if (!poisoned_.ok()) return poisoned_;
  if (!dirty_ && !force) return absl::OkStatus();
  std::vector<Timeline*> all;
  {
    absl::ReaderMutexLock l(&mu_);
    for (auto& [id, tl] : timelines_) all.push_back(tl.get());
  }
  bool wrote = false;
  for (Timeline* tl : all) {
    if (!tl->broken.empty()) continue;
    if (tl->mem_versions > 0) {
      PGB_RETURN_IF_ERROR(FlushTimeline(tl));
      wrote = true;
    }
    uint64_t file_bytes = 0;
    for (const auto& [id, layer] : tl->layers) file_bytes += layer->file_size();
    // Merge when a timeline has too many files, or when most of its file bytes are garbage.
    if (tl->layers.size() > options_.max_layers_per_timeline ||
        (tl->layers.size() > 1 && file_bytes > 2 * tl->diverged_bytes + (1u << 20)) ||
        (tl->layers.size() == 1 && file_bytes > 4 * tl->diverged_bytes + (4u << 20))) {
      PGB_RETURN_IF_ERROR(CompactTimeline(tl));
      wrote = true;
    }
  }
  if (wrote) PGB_RETURN_IF_ERROR(env_->SyncDir(JoinPath(options_.data_dir, "layers")));
  uint64_t new_seq = log_seq_ + 1;
  PGB_RETURN_IF_ERROR(StartNewSegment(new_seq));
  PGB_RETURN_IF_ERROR(WriteManifest(new_seq));
  log_start_seq_ = new_seq;
  dirty_ = false;
  DeleteOrphans();
  ++stat_checkpoints_;
  return absl::OkStatus();
}

absl::Status Engine::FlushTimeline(Timeline* tl) {
  uint32_t id = next_layer_id_++;
  std::string path = LayerPath(id);
  PGB_ASSIGN_OR_RETURN(auto file, env_->NewWritableFile(path));
  LayerWriter writer(std::move(file));
  std::vector<std::pair<uint64_t, uint32_t>> placed;
  absl::Status s;
  {
    absl::ReaderMutexLock l(&mu_);
    placed.reserve(tl->mem_versions);
    for (const auto& [key, versions] : tl->keys()) {
      for (const VersionRef& v : versions) {
        if (v.layer != kMemLayer) continue;
        uint32_t crc;
        std::string_view value = v.tombstone() ? std::string_view() : tl->MemValue(v.offset);
        auto off = writer.Add(key, v.lsn, value, v.tombstone(), &crc);
        if (!off.ok()) {
          s = off.status();
          break;
        }
        placed.push_back({*off, crc});
      }
      if (!s.ok()) break;
    }
  }
  if (s.ok()) s = writer.Finish();
  absl::StatusOr<std::shared_ptr<LayerFile>> layer =
      s.ok() ? LayerFile::Open(env_, path, id) : absl::StatusOr<std::shared_ptr<LayerFile>>(s);
  if (!layer.ok()) {
    env_->DeleteFile(path).IgnoreError();
    LogWarning("Flushing an in-memory layer failed; it stays in memory and in the log",
               {{"tenant", tl->tenant_id}, {"timeline", tl->timeline_id},
                {"error", layer.status().ToString()}});
    return layer.status();
  }
  absl::MutexLock l(&mu_);
  size_t i = 0;
  for (auto& [key, versions] : tl->mutable_keys()) {
    for (VersionRef& v : versions) {
      if (v.layer != kMemLayer) continue;
      v.layer = id;
      v.offset = placed[i].first;
      v.crc = placed[i].second;
      ++i;
    }
  }
  tl->layers[id] = std::move(*layer);
  tl->ClearMem();
  return absl::OkStatus();
}

absl::Status Engine::CompactTimeline(Timeline* tl) {
  // Rewrites every retained version of the timeline into one file: for each key the version
  // visible at the GC cutoff (the image) followed by newer deltas. Afterwards a read of this
  // timeline touches exactly one file.
  uint32_t id = next_layer_id_++;
  std::string path = LayerPath(id);
  PGB_ASSIGN_OR_RETURN(auto file, env_->NewWritableFile(path));
  LayerWriter writer(std::move(file));
  std::vector<std::pair<uint64_t, uint32_t>> placed;
  absl::Status s;
  {
    absl::ReaderMutexLock l(&mu_);
    std::string value;
    for (const auto& [key, versions] : tl->keys()) {
      for (const VersionRef& v : versions) {
        value.clear();
        if (!v.tombstone()) s = ReadVersion(tl, v, &value);
        uint32_t crc = 0;
        if (s.ok()) {
          auto off = writer.Add(key, v.lsn, value, v.tombstone(), &crc);
          if (off.ok()) placed.push_back({*off, crc});
          s = off.status();
        }
        if (!s.ok()) break;
      }
      if (!s.ok()) break;
    }
  }
  if (s.ok()) s = writer.Finish();
  absl::StatusOr<std::shared_ptr<LayerFile>> layer =
      s.ok() ? LayerFile::Open(env_, path, id) : absl::StatusOr<std::shared_ptr<LayerFile>>(s);
  if (!layer.ok()) {
    env_->DeleteFile(path).IgnoreError();
    LogWarning("Compaction failed; the old layer files stay in use",
               {{"tenant", tl->tenant_id}, {"timeline", tl->timeline_id},
                {"error", layer.status().ToString()}});
    return layer.status();
  }
  absl::MutexLock l(&mu_);
  size_t i = 0;
  for (auto& [key, versions] : tl->mutable_keys()) {
    for (VersionRef& v : versions) {
      v.layer = id;
      v.offset = placed[i].first;
      v.crc = placed[i].second;
      ++i;
    }
  }
  tl->layers.clear();
  tl->layers[id] = std::move(*layer);
  ++stat_compactions_;
  return absl::OkStatus();
}

absl::Status Engine::WriteManifest(uint64_t log_start_seq) {
  pb::Manifest m;
  {
    absl::ReaderMutexLock l(&mu_);
    m.set_log_start_seq(log_start_seq);
    m.set_next_layer_id(next_layer_id_);
    for (const auto& [id, created] : tenants_) {
      pb::TenantMeta* t = m.add_tenants();
      t->set_tenant_id(id);
      t->set_created_micros(created);
    }
    for (const auto& [id, tl] : timelines_) FillTimelineMeta(*tl, m.add_timelines());
  }
  return WriteFileAtomically(env_, JoinPath(options_.data_dir, "MANIFEST"),
                             m.SerializeAsString());
}

void Engine::DeleteOrphans() {
  std::set<uint32_t> live;
  {
    absl::ReaderMutexLock l(&mu_);
    for (const auto& [id, tl] : timelines_) {
      for (const auto& [lid, layer] : tl->layers) live.insert(lid);
    }
  }
  std::string layers_dir = JoinPath(options_.data_dir, "layers");
  if (auto names = env_->GetChildren(layers_dir); names.ok()) {
    for (const std::string& name : *names) {
      unsigned id;
      char tail[8] = {0};
      bool is_layer = sscanf(name.c_str(), "%8x.%6s", &id, tail) == 2 &&
                      std::string(tail) == "layer";
      if (!is_layer || live.count(id) == 0) {
        env_->DeleteFile(JoinPath(layers_dir, name)).IgnoreError();
      }
    }
  }
  std::string wal_dir = JoinPath(options_.data_dir, "wal");
  if (auto names = env_->GetChildren(wal_dir); names.ok()) {
    for (const std::string& name : *names) {
      uint64_t seq;
      if (sscanf(name.c_str(), "%16" SCNx64 ".log", &seq) == 1 && seq < log_start_seq_) {
        env_->DeleteFile(JoinPath(wal_dir, name)).IgnoreError();
      }
    }
  }
}

uint64_t Engine::ComputeCutoff(const Timeline* tl, int64_t now) const {
  const auto& pts = tl->points;
  uint64_t head = tl->head_lsn;
  uint64_t by_time = head, by_bytes = head;
  if (tl->retention.history_seconds > 0) {
    int64_t horizon = now - static_cast<int64_t>(tl->retention.history_seconds) * 1'000'000;
    auto it = std::upper_bound(pts.begin(), pts.end(), horizon,
                               [](int64_t t, const LsnPoint& p) { return t < p.time_micros; });
    by_time = it == pts.begin() ? pts.front().lsn : (it - 1)->lsn;
  }
  if (tl->retention.history_bytes > 0) {
    // Keep the newest commits whose bytes add up to at most history_bytes.
    uint64_t acc = 0;
    by_bytes = pts.front().lsn;
    for (size_t i = pts.size(); i-- > 1;) {
      acc += pts[i].bytes;
      if (acc > tl->retention.history_bytes) {
        by_bytes = pts[i].lsn;
        break;
      }
    }
  }
  uint64_t cutoff = std::min(by_time, by_bytes);
  for (const Lease& l : tl->leases) {
    if (l.expires_micros > now) cutoff = std::min(cutoff, l.lsn);
  }
  return std::clamp(cutoff, tl->gc_cutoff, head);
}

uint64_t Engine::PruneTimeline(Timeline* tl) {
  // Read points that must stay answerable: the cutoff itself and every child's branch point.
  std::vector<uint64_t> read_points = {tl->gc_cutoff};
  for (const Timeline* c : tl->children) {
    if (c->ancestor_lsn < tl->gc_cutoff) read_points.push_back(c->ancestor_lsn);
  }
  std::sort(read_points.begin(), read_points.end());
  uint64_t dropped = 0;
  auto& keys = tl->mutable_keys();
  std::vector<std::string_view> empty_keys;
  for (auto& [key, v] : keys) {
    if (v.front().lsn > tl->gc_cutoff) continue;
    size_t out = 0;
    for (size_t i = 0; i < v.size(); ++i) {
      bool keep = v[i].lsn > tl->gc_cutoff;
      if (!keep) {
        // Keep v[i] if some read point p has v[i].lsn <= p < the next version's LSN.
        uint64_t next = i + 1 < v.size() ? v[i + 1].lsn : UINT64_MAX;
        auto it = std::lower_bound(read_points.begin(), read_points.end(), v[i].lsn);
        keep = it != read_points.end() && *it < next;
      }
      if (keep) {
        v[out++] = v[i];
      } else {
        tl->diverged_bytes -= v[i].bytes();
        ++dropped;
      }
    }
    v.resize(out);
    if (v.empty()) empty_keys.push_back(key);
  }
  for (std::string_view k : empty_keys) tl->Erase(std::string(k));
  // The LSN table keeps the cutoff's point and everything after it.
  auto& pts = tl->points;
  auto first = std::upper_bound(pts.begin(), pts.end(), tl->gc_cutoff,
                                [](uint64_t l, const LsnPoint& p) { return l < p.lsn; });
  if (first != pts.begin()) --first;
  pts.erase(pts.begin(), first);
  return dropped;
}

absl::Status Engine::RunGc() {
  return RunExclusive([this]() -> absl::Status {
    int64_t now = clock_->NowMicros();
    uint64_t dropped = 0;
    bool changed = false;
    {
      absl::MutexLock l(&mu_);
      for (auto& [id, tl] : timelines_) {
        size_t leases = tl->leases.size();
        tl->leases.erase(std::remove_if(tl->leases.begin(), tl->leases.end(),
                                        [&](const Lease& l) { return l.expires_micros <= now; }),
                         tl->leases.end());
        uint64_t cutoff = ComputeCutoff(tl.get(), now);
        changed |= cutoff != tl->gc_cutoff || leases != tl->leases.size();
        tl->gc_cutoff = cutoff;
        dropped += PruneTimeline(tl.get());
      }
    }
    changed |= dropped > 0;
    ++stat_gc_runs_;
    stat_gc_dropped_ += dropped;
    if (dropped > 0) LogInfo("Garbage-collected history", {{"versions", std::to_string(dropped)}});
    // Persist the new cutoffs and reclaim the space of dropped versions.
    return CheckpointLocked(/*force=*/changed);
  });
}

void Engine::BackgroundLoop() {
  int64_t last_gc = clock_->NowMicros();
  while (true) {
    {
      absl::MutexLock l(&bg_mu_);
      bg_mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::Seconds(1));
      if (stopping_) return;
    }
    uint64_t mem = 0;
    {
      absl::ReaderMutexLock l(&mu_);
      for (const auto& [id, tl] : timelines_) mem += tl->mem_bytes();
    }
    absl::Status s;
    int64_t now = clock_->NowMicros();
    if (now - last_gc >= int64_t{options_.gc_interval_seconds} * 1'000'000) {
      last_gc = now;
      s = RunGc();
    } else if (mem >= options_.memtable_flush_bytes) {
      s = Checkpoint();
    }
    if (!s.ok()) LogWarning("Background maintenance failed", {{"error", s.ToString()}});
  }
}

}  // namespace pgbranch::storage
