// Maintenance: checkpoints (in-memory layers to layer files + manifest), compaction, GC.
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <set>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "pageserver/storage/engine.h"
#include "pageserver/storage/storage.pb.h"

namespace pgbranch::storage {

void FillTimelineMeta(const Timeline& tl, pb::TimelineMeta* m);  // engine_admin.cc

absl::Status Engine::Checkpoint() {
  std::lock_guard<std::mutex> lock(maint_mu_);
  return CheckpointLocked(/*force=*/false);
}

absl::Status Engine::CheckpointLocked(bool force) {
  if (!poisoned_.ok()) return poisoned_;
  // 1. Compaction works on layer files only, while commits go on.
  std::vector<std::string> keys;
  {
    absl::ReaderMutexLock l(&mu_);
    for (const auto& [key, tl] : timelines_) keys.push_back(key);
  }
  for (const std::string& key : keys) {
    absl::Status s = MaybeCompact(key);
    if (!s.ok()) LogWarning("Compaction failed", {{"timeline", key}, {"error", s.ToString()}});
  }
  // 2. The next log segment is zero-filled before the queue is taken.
  PGB_RETURN_IF_ERROR(PrepareNextSegment());

  // 3. Briefly as the sole mutator: freeze every in-memory layer, switch log segments, and take
  //    the manifest snapshot that the new segment's records will be replayed on top of.
  std::vector<std::shared_ptr<Arena>> to_flush;
  pb::Manifest snapshot;
  bool skipped = false;
  absl::Status s = RunExclusive([&]() -> absl::Status {
    if (!poisoned_.ok()) return poisoned_;
    if (!dirty_ && !force) {
      skipped = true;
      return absl::OkStatus();
    }
    absl::MutexLock l(&mu_);
    for (auto& [key, tl] : timelines_) {
      if (tl->active && !tl->active->empty()) tl->frozen[tl->active->id()] = tl->active;
      tl->active.reset();
      for (const auto& [id, arena] : tl->frozen) to_flush.push_back(arena);
    }
    PGB_RETURN_IF_ERROR(RollSegment());
    snapshot.set_log_start_seq(log_seq_);
    snapshot.set_next_layer_id(next_layer_id_);
    for (const auto& [id, created] : tenants_) {
      pb::TenantMeta* t = snapshot.add_tenants();
      t->set_tenant_id(id);
      t->set_created_micros(created);
    }
    for (const auto& [key, tl] : timelines_) {
      pb::TimelineMeta* m = snapshot.add_timelines();
      FillTimelineMeta(*tl, m);
      // The frozen layers are files by the time this manifest is written.
      for (const auto& [id, arena] : tl->frozen) m->add_layer_ids(id);
    }
    dirty_ = false;
    return absl::OkStatus();
  });
  if (!s.ok() || skipped) return s;

  // 4. Write the frozen layers as files, commits going on meanwhile.
  for (const auto& arena : to_flush) {
    s = FlushArena(arena);
    if (!s.ok()) {
      dirty_ = true;  // the next checkpoint retries; the log still holds everything
      return s;
    }
  }
  s = env_->SyncDir(JoinPath(options_.data_dir, "layers"));
  // 5. The manifest, then what it made unnecessary.
  if (s.ok()) {
    s = WriteFileAtomically(env_, JoinPath(options_.data_dir, "MANIFEST"),
                            snapshot.SerializeAsString());
  }
  if (!s.ok()) {
    dirty_ = true;
    return s;
  }
  manifest_layers_.clear();
  for (const auto& m : snapshot.timelines()) {
    manifest_layers_.insert(m.layer_ids().begin(), m.layer_ids().end());
  }
  log_start_seq_ = snapshot.log_start_seq();
  DeleteOrphans(manifest_layers_);
  ++stat_checkpoints_;
  return absl::OkStatus();
}

absl::Status Engine::FlushArena(const std::shared_ptr<Arena>& arena) {
  // A frozen arena is immutable: no lock is needed to read it.
  std::vector<const Arena::Entry*> entries;
  entries.reserve(arena->entries().size());
  for (const auto& e : arena->entries()) entries.push_back(&e);
  std::stable_sort(entries.begin(), entries.end(), [](const auto* a, const auto* b) {
    return std::tie(a->key, a->lsn) < std::tie(b->key, b->lsn);
  });
  std::string path = LayerPath(arena->id());
  PGB_ASSIGN_OR_RETURN(auto file, env_->NewWritableFile(path));
  LayerWriter writer(std::move(file));
  absl::Status s = writer.AppendValueRegion(arena->bytes(),
                                            [&](WritableFile* f) { return arena->WriteValues(f); });
  if (s.ok()) {
    for (size_t i = 0; i < entries.size(); ++i) {
      const Arena::Entry* e = entries[i];
      // A key written twice in one batch: the later write is the version.
      if (i + 1 < entries.size() && entries[i + 1]->key == e->key &&
          entries[i + 1]->lsn == e->lsn) {
        continue;
      }
      writer.AddIndexEntry(e->key, e->lsn, e->offset, e->len, e->crc);
    }
    s = writer.Finish();
  }
  auto layer = s.ok() ? LayerFile::Open(env_, path, arena->id())
                      : absl::StatusOr<std::shared_ptr<LayerFile>>(s);
  if (!layer.ok()) {
    env_->DeleteFile(path).IgnoreError();
    LogWarning("Flushing an in-memory layer failed; it stays in memory and in the log",
               {{"layer", std::to_string(arena->id())}, {"error", layer.status().ToString()}});
    return layer.status();
  }
  absl::MutexLock l(&mu_);
  // The owner may have changed (reset with backup) or gone (deleted) meanwhile.
  for (auto& [key, tl] : timelines_) {
    auto it = tl->frozen.find(arena->id());
    if (it == tl->frozen.end()) continue;
    tl->layers[arena->id()] = std::move(*layer);
    tl->frozen.erase(it);
    return absl::OkStatus();
  }
  env_->DeleteFile(path).IgnoreError();
  return absl::OkStatus();
}

absl::Status Engine::MaybeCompact(const std::string& key) {
  struct Item {
    uint32_t layer;
    uint64_t lsn;
    uint64_t offset;
    uint32_t len;
    uint32_t crc;
    std::string key;
  };
  std::map<uint32_t, std::shared_ptr<LayerFile>> inputs;
  std::vector<Item> items;
  std::string tenant_id, timeline_id;
  {
    absl::ReaderMutexLock l(&mu_);
    auto it = timelines_.find(key);
    if (it == timelines_.end() || !it->second->broken.empty()) return absl::OkStatus();
    const Timeline* tl = it->second.get();
    tenant_id = tl->tenant_id;
    timeline_id = tl->timeline_id;
    std::vector<std::pair<uint64_t, uint32_t>> by_size;
    uint64_t file_bytes = 0;
    for (const auto& [id, layer] : tl->layers) {
      by_size.push_back({layer->file_size(), id});
      file_bytes += layer->file_size();
    }
    uint64_t mem = tl->mem_bytes();
    uint64_t live = tl->diverged_bytes > mem ? tl->diverged_bytes - mem : 0;
    if (!by_size.empty() && file_bytes > 2 * live + (4u << 20)) {
      // Mostly garbage (GC dropped it, or a duplicate-heavy batch): rewrite everything.
      for (const auto& [size, id] : by_size) inputs[id] = tl->layers.at(id);
    } else if (by_size.size() > options_.max_layers_per_timeline) {
      // Size-tiered: merge the smallest files, so big files are rarely rewritten.
      std::sort(by_size.begin(), by_size.end());
      size_t n = by_size.size() - options_.max_layers_per_timeline / 2;
      for (size_t i = 0; i < n; ++i) inputs[by_size[i].second] = tl->layers.at(by_size[i].second);
    }
    if (inputs.empty()) return absl::OkStatus();
    for (const auto& [k, versions] : tl->keys()) {
      for (const VersionRef& v : versions) {
        if (inputs.count(v.layer)) items.push_back({v.layer, v.lsn, v.offset, v.len, v.crc, k});
      }
    }
  }
  // Layer files are immutable: read them without locks.
  uint32_t id = next_layer_id_++;
  std::string path = LayerPath(id);
  PGB_ASSIGN_OR_RETURN(auto file, env_->NewWritableFile(path));
  LayerWriter writer(std::move(file));
  std::vector<std::pair<uint64_t, uint32_t>> placed;
  placed.reserve(items.size());
  absl::Status s;
  std::string value;
  for (const Item& item : items) {
    value.clear();
    bool tombstone = item.len == kTombstoneLen;
    if (!tombstone) s = inputs[item.layer]->ReadValue(item.offset, item.len, item.crc, &value);
    if (!s.ok()) break;
    uint32_t crc;
    auto off = writer.Add(item.key, item.lsn, value, tombstone, &crc);
    if (!off.ok()) {
      s = off.status();
      break;
    }
    placed.push_back({*off, crc});
  }
  if (s.ok()) s = writer.Finish();
  auto layer =
      s.ok() ? LayerFile::Open(env_, path, id) : absl::StatusOr<std::shared_ptr<LayerFile>>(s);
  if (!layer.ok()) {
    env_->DeleteFile(path).IgnoreError();
    return layer.status();
  }
  absl::MutexLock l(&mu_);
  auto it = timelines_.find(key);
  bool still_owned = it != timelines_.end();
  for (const auto& [in_id, f] : inputs) {
    still_owned = still_owned && it->second->layers.count(in_id) > 0;
  }
  if (!still_owned) {  // reset or deleted meanwhile
    env_->DeleteFile(path).IgnoreError();
    return absl::OkStatus();
  }
  // Only this thread (holding maint_mu_) removes versions, and commits add versions to arenas
  // only, so the input versions are exactly those collected, in the same order.
  Timeline* tl = it->second.get();
  size_t i = 0;
  for (auto& [k, versions] : tl->mutable_keys()) {
    for (VersionRef& v : versions) {
      if (!inputs.count(v.layer)) continue;
      v.layer = id;
      v.offset = placed[i].first;
      v.crc = placed[i].second;
      ++i;
    }
  }
  for (const auto& [in_id, f] : inputs) tl->layers.erase(in_id);
  tl->layers[id] = std::move(*layer);
  dirty_ = true;
  ++stat_compactions_;
  LogInfo("Compacted layer files", {{"tenant", tenant_id},
                                    {"timeline", timeline_id},
                                    {"inputs", std::to_string(inputs.size())},
                                    {"versions", std::to_string(items.size())}});
  return absl::OkStatus();
}

void Engine::DeleteOrphans(const std::set<uint32_t>& also_live) {
  std::set<uint32_t> live = also_live;
  {
    absl::ReaderMutexLock l(&mu_);
    for (const auto& [key, tl] : timelines_) {
      for (const auto& [lid, layer] : tl->layers) live.insert(lid);
      for (const auto& [lid, arena] : tl->frozen) live.insert(lid);
      if (tl->active) live.insert(tl->active->id());
    }
  }
  std::string layers_dir = JoinPath(options_.data_dir, "layers");
  if (auto names = env_->GetChildren(layers_dir); names.ok()) {
    for (const std::string& name : *names) {
      unsigned id;
      char tail[8] = {0};
      bool is_layer =
          sscanf(name.c_str(), "%8x.%6s", &id, tail) == 2 && std::string(tail) == "layer";
      // Files being written right now have ids at or above next_layer_id_ minus in-flight ones;
      // only the maintenance thread writes layers and it is the caller, so none are in flight.
      if (!is_layer || live.count(id) == 0) {
        env_->DeleteFile(JoinPath(layers_dir, name)).IgnoreError();
      }
    }
  }
  std::string wal_dir = JoinPath(options_.data_dir, "wal");
  if (auto names = env_->GetChildren(wal_dir); names.ok()) {
    int recycled = static_cast<int>(RecycledFiles().size());
    for (const std::string& name : *names) {
      uint64_t seq;
      if (sscanf(name.c_str(), "%16" SCNx64 ".log", &seq) != 1 || seq >= log_start_seq_) continue;
      std::string path = JoinPath(wal_dir, name);
      // Keep full-size retired segments for reuse; their blocks need no zero-filling.
      auto size = env_->GetFileSize(path);
      if (recycled < MaxRecycledSegments() && size.ok() && *size >= options_.log_prealloc_bytes &&
          env_->RenameFile(path, JoinPath(wal_dir, "recycle-" + name)).ok()) {
        ++recycled;
        continue;
      }
      env_->DeleteFile(path).IgnoreError();
    }
  }
}

int Engine::MaxRecycledSegments() const {
  // A checkpoint retires the segments written since the last one: about memtable_flush_bytes of
  // log under a steady write load. Keeping that many (and two more) lets the next ones reuse
  // them all, so a bulk load does not write every log byte twice (the records, and the zeros
  // of a fresh segment before them). The cost: that much disk held by idle retired segments.
  uint64_t per_checkpoint = options_.log_prealloc_bytes == 0
                                ? 0
                                : options_.memtable_flush_bytes / options_.log_prealloc_bytes;
  return static_cast<int>(std::min<uint64_t>(per_checkpoint, 16)) + 2;
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
  std::lock_guard<std::mutex> lock(maint_mu_);
  {
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
  }
}

void Engine::BackgroundLoop() {
  int64_t last_gc = clock_->NowMicros();
  // The first pass prepares the log's spares at once: a new pageserver has none, and its start
  // is the one moment known to be idle.
  bool first = true;
  bool spare_owed = false;
  while (true) {
    {
      absl::MutexLock l(&bg_mu_);
      auto wake = [this]()
                      ABSL_EXCLUSIVE_LOCKS_REQUIRED(bg_mu_) { return stopping_ || spare_needed_; };
      // While a spare's zero-fill waits for the log to go idle, look again soon.
      absl::Duration timeout = spare_owed ? absl::Milliseconds(100) : absl::Seconds(1);
      if (!std::exchange(first, false)) bg_mu_.AwaitWithTimeout(absl::Condition(&wake), timeout);
      if (stopping_) return;
      spare_needed_ = false;
    }
    uint64_t mem = 0;
    {
      absl::ReaderMutexLock l(&mu_);
      for (const auto& [id, tl] : timelines_) mem += tl->mem_bytes();
    }
    absl::StatusOr<bool> owed = PrepareLogSpares();  // keep the log's spares ready
    absl::Status s = owed.status();
    spare_owed = owed.ok() && *owed;
    int64_t now = clock_->NowMicros();
    if (!s.ok()) {
      LogWarning("Cannot prepare the next log segment", {{"error", s.ToString()}});
    } else if (now - last_gc >= int64_t{options_.gc_interval_seconds} * 1'000'000) {
      last_gc = now;
      s = RunGc();
    } else if (mem >= options_.memtable_flush_bytes) {
      s = Checkpoint();
    }
    if (!s.ok()) LogWarning("Background maintenance failed", {{"error", s.ToString()}});
  }
}

}  // namespace pgbranch::storage
