#include "pageserver/storage/engine.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/coding.h"
#include "common/hop_trace.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "pageserver/storage/commit_record.h"
#include "pageserver/storage/storage.pb.h"

namespace pgbranch::storage {

// One entry of the write queue: either a commit or an exclusive operation.
struct Engine::Writer {
  // Commit.
  const std::string* tenant_id = nullptr;
  const std::string* timeline_id = nullptr;
  uint64_t generation = 0;
  // One atomic batch per element, each at its own LSN, in order (Commit passes one; a stream's
  // queued requests several). All or none of them are logged: they share the generation check
  // and one log write.
  // Batch i is mutations[ends[i - 1], ends[i]).
  const MutationView* mutations = nullptr;
  const std::vector<size_t>* ends = nullptr;
  std::vector<uint32_t> crcs;  // of each mutation's value, computed before queueing
  uint64_t bytes = 0;
  // Exclusive operation.
  const std::function<absl::Status()>* exclusive = nullptr;

  absl::Status status;
  std::vector<CommitResult> results;  // one per batch
  bool done = false;
  absl::CondVar cv;
};

Engine::Engine(const EngineOptions& options)
    : options_(options),
      env_(options.env ? options.env : DefaultEnv()),
      clock_(options.clock ? options.clock : RealClock()) {}

absl::StatusOr<std::unique_ptr<Engine>> Engine::Open(const EngineOptions& options) {
  if (options.data_dir.empty()) return absl::InvalidArgumentError("data directory is not set");
  std::unique_ptr<Engine> engine(new Engine(options));
  PGB_RETURN_IF_ERROR(engine->Recover());
  if (options.background_maintenance) {
    engine->bg_thread_ = std::thread([e = engine.get()] { e->BackgroundLoop(); });
  }
  return engine;
}

Engine::~Engine() {
  {
    absl::MutexLock l(&bg_mu_);
    stopping_ = true;
  }
  if (bg_thread_.joinable()) bg_thread_.join();
  if (options_.checkpoint_on_close && poisoned_.ok()) {
    absl::Status s = Checkpoint();
    if (!s.ok()) LogWarning("Checkpoint at shutdown failed", {{"error", s.ToString()}});
  }
  if (log_) log_->Close().IgnoreError();
}

std::string Engine::NewId() {
  static std::mutex mu;
  static std::mt19937_64 rng(std::random_device{}());
  std::lock_guard<std::mutex> lock(mu);
  char buf[33];
  snprintf(buf, sizeof(buf), "%016" PRIx64 "%016" PRIx64, rng(), rng());
  return buf;
}

std::string Engine::SegmentPath(uint64_t seq) const {
  char name[32];
  snprintf(name, sizeof(name), "%016" PRIx64 ".log", seq);
  return JoinPath(JoinPath(options_.data_dir, "wal"), name);
}

std::string Engine::LayerPath(uint32_t id) const {
  char name[32];
  snprintf(name, sizeof(name), "%08x.layer", id);
  return JoinPath(JoinPath(options_.data_dir, "layers"), name);
}

absl::StatusOr<std::unique_ptr<LogWriter>> Engine::CreateSegment(uint64_t seq) {
  std::string wal = JoinPath(options_.data_dir, "wal");
  std::string path = SegmentPath(seq);
  std::vector<std::string> recycled_files = RecycledFiles();
  std::string recycled = recycled_files.empty() ? "" : recycled_files.back();
  std::unique_ptr<LogWriter> log;
  if (!recycled.empty() && env_->RenameFile(recycled, path).ok()) {
    PGB_ASSIGN_OR_RETURN(auto file, env_->ReopenWritableFile(path));
    uint64_t size = file->Size();
    log = std::make_unique<LogWriter>(std::move(file), seq, options_.log_prealloc_bytes, size);
  } else {
    PGB_ASSIGN_OR_RETURN(auto file, env_->NewWritableFile(path));
    log = std::make_unique<LogWriter>(std::move(file), seq, options_.log_prealloc_bytes);
    ++stat_zero_fills_;
  }
  absl::Status s = log->Reserve(1);
  // The segment's directory entry must be durable before anything in it is acknowledged.
  if (s.ok()) s = env_->SyncDir(wal);
  if (!s.ok()) {
    log->Close().IgnoreError();
    env_->DeleteFile(path).IgnoreError();
    return s;
  }
  return log;
}

absl::Status Engine::StartNewSegment(uint64_t seq) {
  PGB_ASSIGN_OR_RETURN(auto log, CreateSegment(seq));
  if (log_) log_->Close().IgnoreError();
  log_ = std::move(log);
  log_seq_ = seq;
  return absl::OkStatus();
}

absl::Status Engine::Recover() {
  const std::string& dir = options_.data_dir;
  PGB_RETURN_IF_ERROR(env_->CreateDirs(JoinPath(dir, "wal")));
  PGB_RETURN_IF_ERROR(env_->CreateDirs(JoinPath(dir, "layers")));
  env_->SyncDir(dir).IgnoreError();

  log_start_seq_ = 1;
  std::string manifest_path = JoinPath(dir, "MANIFEST");
  if (env_->FileExists(manifest_path)) {
    PGB_ASSIGN_OR_RETURN(std::string data, ReadFileToString(env_, manifest_path));
    pb::Manifest manifest;
    if (!manifest.ParseFromString(data)) {
      return absl::DataLossError(
          absl::StrCat("manifest ", manifest_path, " is unreadable; restore the data directory"));
    }
    PGB_RETURN_IF_ERROR(LoadManifest(manifest));
  }
  uint64_t last_seq = log_start_seq_ - 1;
  PGB_RETURN_IF_ERROR(ReplayLog(log_start_seq_, &last_seq));
  {
    absl::MutexLock l(&mu_);
    for (auto& [id, tl] : timelines_) PruneTimeline(tl.get());
  }
  // Layer ids must never be reused, even for orphans of an interrupted checkpoint.
  auto names = env_->GetChildren(JoinPath(dir, "layers"));
  if (names.ok()) {
    for (const std::string& name : *names) {
      unsigned id;
      if (sscanf(name.c_str(), "%8x.layer", &id) == 1 && id >= next_layer_id_) {
        next_layer_id_ = id + 1;
      }
    }
  }
  // A spare file whose zero-fill a crash interrupted (never a "recycle-" file: see FillSpareFile).
  std::string spare_tmp = JoinPath(JoinPath(dir, "wal"), "spare.tmp");
  if (env_->FileExists(spare_tmp)) env_->DeleteFile(spare_tmp).IgnoreError();
  PGB_RETURN_IF_ERROR(StartNewSegment(last_seq + 1));
  DeleteOrphans(manifest_layers_);
  absl::ReaderMutexLock l(&mu_);
  LogInfo("Recovered pageserver state", {{"data_dir", dir},
                                         {"tenants", std::to_string(tenants_.size())},
                                         {"timelines", std::to_string(timelines_.size())},
                                         {"log_segment", std::to_string(log_seq_)}});
  return absl::OkStatus();
}

absl::Status Engine::LoadManifest(const pb::Manifest& m) {
  absl::MutexLock l(&mu_);
  log_start_seq_ = m.log_start_seq();
  next_layer_id_ = std::max<uint32_t>(m.next_layer_id(), 1);
  manifest_layers_.clear();
  for (const auto& t : m.tenants()) tenants_[t.tenant_id()] = t.created_micros();
  for (const auto& meta : m.timelines()) {
    auto tl = std::make_unique<Timeline>();
    tl->tenant_id = meta.tenant_id();
    tl->timeline_id = meta.timeline_id();
    tl->ancestor_lsn = meta.ancestor_lsn();
    tl->head_lsn = meta.head_lsn();
    tl->generation = meta.generation();
    tl->gc_cutoff = meta.gc_cutoff();
    tl->created_micros = meta.created_micros();
    tl->retention = {meta.retention().history_seconds(), meta.retention().history_bytes()};
    for (const auto& lease : meta.leases()) {
      tl->leases.push_back({lease.lsn(), lease.expires_micros()});
    }
    int n = meta.point_lsn_size();
    if (meta.point_time_size() != n || meta.point_bytes_size() != n ||
        meta.point_size_size() != n) {
      return absl::DataLossError("manifest has a malformed LSN table");
    }
    for (int i = 0; i < n; ++i) {
      tl->points.push_back(
          {meta.point_lsn(i), meta.point_time(i), meta.point_bytes(i), meta.point_size(i)});
    }
    for (uint32_t layer_id : meta.layer_ids()) {
      manifest_layers_.insert(layer_id);
      auto layer = LayerFile::Open(env_, LayerPath(layer_id), layer_id);
      if (!layer.ok()) {
        LogError("Timeline is broken: a layer file failed to load",
                 {{"tenant", tl->tenant_id},
                  {"timeline", tl->timeline_id},
                  {"error", layer.status().ToString()}});
        tl->broken = std::string(layer.status().message());
        continue;
      }
      Timeline* t = tl.get();
      (*layer)->ForEach([&](const LayerEntry& e) {
        Timeline::Versions& v = t->GetOrCreate(e.key);
        VersionRef ref{e.lsn, e.offset, layer_id, e.len, e.crc};
        if (v.empty() || v.back().lsn < e.lsn) {
          v.push_back(ref);
        } else {
          auto it = std::lower_bound(v.begin(), v.end(), e.lsn,
                                     [](const VersionRef& r, uint64_t l) { return r.lsn < l; });
          if (it != v.end() && it->lsn == e.lsn) {
            t->diverged_bytes -= it->bytes();
            *it = ref;
          } else {
            v.insert(it, ref);
          }
        }
        t->diverged_bytes += ref.bytes();
      });
      tl->layers[layer_id] = std::move(*layer);
    }
    timelines_[TimelineKey(meta.tenant_id(), meta.timeline_id())] = std::move(tl);
  }
  for (const auto& meta : m.timelines()) {
    if (meta.ancestor_id().empty()) continue;
    auto parent = timelines_.find(TimelineKey(meta.tenant_id(), meta.ancestor_id()));
    if (parent == timelines_.end()) {
      return absl::DataLossError(absl::StrCat("manifest: timeline ", meta.timeline_id(),
                                              " names a missing ancestor ", meta.ancestor_id()));
    }
    Timeline* child = timelines_[TimelineKey(meta.tenant_id(), meta.timeline_id())].get();
    child->ancestor = parent->second.get();
    parent->second->children.push_back(child);
  }
  return absl::OkStatus();
}

absl::Status Engine::ReplayLog(uint64_t start_seq, uint64_t* last_seq) {
  PGB_ASSIGN_OR_RETURN(std::vector<std::string> names,
                       env_->GetChildren(JoinPath(options_.data_dir, "wal")));
  std::vector<uint64_t> seqs;
  for (const std::string& name : names) {
    uint64_t seq;
    if (sscanf(name.c_str(), "%16" SCNx64 ".log", &seq) == 1 && seq >= start_seq) {
      seqs.push_back(seq);
    }
  }
  std::sort(seqs.begin(), seqs.end());
  uint64_t records = 0;
  for (uint64_t seq : seqs) {
    PGB_ASSIGN_OR_RETURN(std::string data, ReadFileToString(env_, SegmentPath(seq)));
    LogReader reader(std::move(data), seq);
    std::string_view payload;
    while (reader.ReadRecord(&payload)) {
      pb::LogRecord record;
      if (!record.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
        return absl::DataLossError(
            absl::StrCat("log segment ", SegmentPath(seq), " holds an unparsable record"));
      }
      absl::MutexLock l(&mu_);
      PGB_RETURN_IF_ERROR(ApplyRecord(record, /*replay=*/true));
      ++records;
    }
    if (!reader.CleanTail()) {
      // A torn write that was never acknowledged, or a recycled file's stale records.
      Log(LogLevel::kDebug, "Log segment ends before its zero-fill",
          {{"segment", SegmentPath(seq)},
           {"bytes", std::to_string(reader.TotalBytes() - reader.ValidBytes())}});
    }
    *last_seq = std::max(*last_seq, seq);
  }
  if (records > 0) {
    dirty_ = true;  // the next checkpoint retires the replayed segments
    LogInfo("Replayed log", {{"records", std::to_string(records)}});
  }
  return absl::OkStatus();
}

absl::Status Engine::RunExclusive(const std::function<absl::Status()>& fn) {
  Writer w;
  w.exclusive = &fn;
  absl::MutexLock l(&queue_mu_);
  writers_.push_back(&w);
  while (&w != writers_.front()) w.cv.Wait(&queue_mu_);
  queue_mu_.Unlock();
  absl::Status s = fn();
  queue_mu_.Lock();
  writers_.pop_front();
  if (!writers_.empty()) writers_.front()->cv.Signal();
  return s;
}

absl::Status Engine::AppendToLog(LogBatch* batch) {
  if (!poisoned_.ok()) return poisoned_;
  // A full segment: continue in the spare, already zero-filled. (A group larger than a whole
  // segment grows the segment instead.)
  if (!log_->Fits(batch->bytes()) && log_->Size() > 0) PGB_RETURN_IF_ERROR(RollSegment());
  uint64_t before = log_->Size();
  absl::Status s = log_->AddBatch(batch);
  HopTrace::Mark("log_written", batch->records());
  bool sync_failed = false;
  if (s.ok()) {
    s = log_->Sync();
    sync_failed = !s.ok();
  }
  HopTrace::Mark("log_synced", batch->records());
  last_append_micros_.store(std::max<int64_t>(clock_->NowMicros(), 1), std::memory_order_relaxed);
  if (s.ok()) {
    dirty_ = true;
    return s;
  }
  // Nothing of this group was acknowledged: cut it off so it can never be replayed.
  absl::Status t = log_->TruncateTo(before);
  if (t.ok()) t = log_->Sync();
  if (!t.ok() || sync_failed) {
    // After a failed fdatasync the kernel may have dropped dirty pages; trust nothing until a
    // restart replays what is really on disk.
    poisoned_ = absl::UnavailableError(absl::StrCat("the pageserver's log failed (", s.message(),
                                                    "); restart the pageserver to recover"));
    LogError("Log write failed; refusing writes until restart", {{"error", s.ToString()}});
  }
  return s;
}

absl::Status Engine::PrepareNextSegment() {
  absl::MutexLock l(&spare_mu_);
  if (next_log_) return absl::OkStatus();
  PGB_ASSIGN_OR_RETURN(next_log_, CreateSegment(log_seq_ + 1));
  return absl::OkStatus();
}

absl::StatusOr<bool> Engine::PrepareLogSpares() {
  // The next segment: a rename when a "recycle-" file waits, else a zero-fill now (a full
  // segment will need it, load or not).
  PGB_RETURN_IF_ERROR(PrepareNextSegment());
  if (!RecycledFiles().empty()) return false;
  int64_t last = last_append_micros_.load(std::memory_order_relaxed);
  if (last != 0 && clock_->NowMicros() - last < kSpareIdleMicros) return true;
  // Not an error: without the waiting file the next segment is zero-filled after the switch. (A
  // full disk must not keep the caller from the checkpoint that frees space.)
  if (absl::Status s = FillSpareFile(); !s.ok()) {
    LogWarning("Cannot zero-fill a spare log file", {{"error", s.ToString()}});
  }
  return false;
}

std::vector<std::string> Engine::RecycledFiles() const {
  std::string wal = JoinPath(options_.data_dir, "wal");
  std::vector<std::string> files;
  if (auto names = env_->GetChildren(wal); names.ok()) {
    for (const std::string& name : *names) {
      if (name.rfind("recycle-", 0) == 0) files.push_back(JoinPath(wal, name));
    }
  }
  return files;
}

absl::Status Engine::FillSpareFile() {
  std::string wal = JoinPath(options_.data_dir, "wal");
  std::string tmp = JoinPath(wal, "spare.tmp");
  PGB_ASSIGN_OR_RETURN(auto file, env_->NewWritableFile(tmp));
  LogWriter spare(std::move(file), /*seq=*/0, options_.log_prealloc_bytes);
  absl::Status s = spare.Reserve(1);  // zero-fills the whole segment size and syncs
  absl::Status c = spare.Close();
  if (s.ok()) s = c;
  ++stat_zero_fills_;
  if (s.ok()) s = env_->RenameFile(tmp, JoinPath(wal, "recycle-spare-" + NewId()));
  if (s.ok()) s = env_->SyncDir(wal);
  if (!s.ok()) env_->DeleteFile(tmp).IgnoreError();
  return s;
}

absl::Status Engine::RollSegment() {
  PGB_RETURN_IF_ERROR(PrepareNextSegment());  // no-op when the spare is ready
  {
    absl::MutexLock l(&spare_mu_);
    log_->Close().IgnoreError();
    log_ = std::move(next_log_);
    ++log_seq_;
  }
  absl::MutexLock l(&bg_mu_);
  spare_needed_ = true;  // wakes the background thread to zero-fill the next one
  return absl::OkStatus();
}

absl::Status Engine::LogAndApply(const std::vector<pb::LogRecord>& records) {
  LogBatch batch;
  for (const auto& r : records) batch.AddRecord(r.SerializeAsString());
  PGB_RETURN_IF_ERROR(AppendToLog(&batch));
  absl::MutexLock l(&mu_);
  for (const auto& r : records) {
    absl::Status s = ApplyRecord(r, /*replay=*/false);
    if (!s.ok()) {
      LogError("Applying a logged record failed", {{"error", s.ToString()}});
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status Engine::ValidateBatch(const MutationView* mutations, size_t n, uint64_t* bytes) const {
  if (n == 0) {
    return absl::InvalidArgumentError("the commit holds no mutations; send at least one");
  }
  *bytes = 0;
  for (size_t i = 0; i < n; ++i) {
    const MutationView& m = mutations[i];
    if (m.key.empty() || m.key.size() > options_.max_key_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "key of ", m.key.size(), " bytes: keys must be 1..", options_.max_key_bytes, " bytes"));
    }
    if (m.value.size() > options_.max_value_bytes) {
      return absl::InvalidArgumentError(absl::StrCat("value of ", m.value.size(),
                                                     " bytes exceeds the limit of ",
                                                     options_.max_value_bytes, " bytes"));
    }
    if (m.tombstone && !m.value.empty()) {
      return absl::InvalidArgumentError("a deletion must not carry a value");
    }
    *bytes += m.key.size() + m.value.size();
  }
  if (*bytes > options_.max_batch_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("the batch holds ", *bytes,
                                                   " bytes; split it into commits of at most ",
                                                   options_.max_batch_bytes, " bytes"));
  }
  return absl::OkStatus();
}

absl::StatusOr<CommitResult> Engine::Commit(const std::string& tenant_id,
                                            const std::string& timeline_id, uint64_t generation,
                                            std::vector<Mutation> mutations) {
  std::vector<std::vector<Mutation>> batches;
  batches.push_back(std::move(mutations));
  std::vector<CommitResult> results;
  PGB_RETURN_IF_ERROR(CommitSequence(tenant_id, timeline_id, generation, &batches, &results));
  return results[0];
}

absl::Status Engine::CommitSequence(const std::string& tenant_id, const std::string& timeline_id,
                                    uint64_t generation,
                                    std::vector<std::vector<Mutation>>* batches,
                                    std::vector<CommitResult>* results) {
  std::vector<MutationView> views;
  std::vector<size_t> ends;
  ends.reserve(batches->size());
  for (const std::vector<Mutation>& b : *batches) {
    for (const Mutation& m : b) views.push_back({m.key, m.value, m.tombstone});
    ends.push_back(views.size());
  }
  absl::Status s = CommitSequence(tenant_id, timeline_id, generation, views, &ends, results);
  batches->resize(ends.size());
  return s;
}

absl::Status Engine::CommitSequence(const std::string& tenant_id, const std::string& timeline_id,
                                    uint64_t generation, const std::vector<MutationView>& mutations,
                                    std::vector<size_t>* ends, std::vector<CommitResult>* results) {
  results->clear();
  if (ends->empty()) return absl::OkStatus();
  // The valid prefix is committed; the first invalid batch ends the sequence with its error.
  absl::Status invalid;
  uint64_t total = 0;
  for (size_t i = 0, begin = 0; i < ends->size(); begin = (*ends)[i++]) {
    uint64_t bytes = 0;
    invalid = ValidateBatch(mutations.data() + begin, (*ends)[i] - begin, &bytes);
    if (!invalid.ok()) {
      ends->resize(i);
      break;
    }
    total += bytes;
  }
  if (ends->empty()) return invalid;

  Writer w;
  w.tenant_id = &tenant_id;
  w.timeline_id = &timeline_id;
  w.generation = generation;
  w.mutations = mutations.data();
  w.ends = ends;
  w.bytes = total;
  const size_t n = ends->back();
  w.crcs.resize(n);
  for (size_t i = 0; i < n; ++i) {
    w.crcs[i] = mutations[i].tombstone ? 0 : Crc32(mutations[i].value);
  }

  {
    absl::MutexLock l(&queue_mu_);
    writers_.push_back(&w);
    while (!w.done && &w != writers_.front()) w.cv.Wait(&queue_mu_);
    if (!w.done) {
      // This thread leads a group of the commits queued behind it.
      std::vector<Writer*> group;
      uint64_t group_bytes = 0;
      for (Writer* x : writers_) {
        if (x->exclusive != nullptr) break;
        if (!group.empty() && (group.size() >= options_.max_group_commits ||
                               group_bytes + x->bytes > options_.max_batch_bytes)) {
          break;
        }
        group.push_back(x);
        group_bytes += x->bytes;
      }
      queue_mu_.Unlock();
      ProcessCommitGroup(group);
      queue_mu_.Lock();
      for (Writer* x : group) {
        writers_.pop_front();
        if (x != &w) {
          x->done = true;
          x->cv.Signal();
        }
      }
      if (!writers_.empty()) writers_.front()->cv.Signal();
    }
  }
  if (!w.status.ok()) return w.status;
  *results = std::move(w.results);
  return invalid;
}

void Engine::ProcessCommitGroup(std::vector<Writer*>& group) {
  LogBatch& records = group_batch_;
  records.Clear();
  std::vector<Writer*> valid;
  std::map<Timeline*, uint64_t> next_lsn;
  std::vector<Timeline*> targets;
  int64_t now = clock_->NowMicros();
  {
    absl::ReaderMutexLock l(&mu_);
    for (Writer* w : group) {
      auto tl = FindTimeline(*w->tenant_id, *w->timeline_id);
      if (!tl.ok()) {
        w->status = tl.status();
        continue;
      }
      Timeline* t = *tl;
      if (t->generation == 0 || w->generation != t->generation) {
        w->status = absl::FailedPreconditionError(
            t->generation == 0
                ? absl::StrCat("timeline ", t->timeline_id,
                               " has no writer; acquire a writer generation first")
                : absl::StrCat("writer generation ", w->generation, " of timeline ", t->timeline_id,
                               " is fenced: generation ", t->generation,
                               " now holds it; this writer must stop"));
        continue;
      }
      auto [it, inserted] = next_lsn.emplace(t, t->head_lsn);
      int64_t time = std::max(now, t->points.empty() ? now : t->points.back().time_micros);
      w->results.clear();
      for (size_t b = 0, begin = 0; b < w->ends->size(); begin = (*w->ends)[b++]) {
        uint64_t lsn = ++it->second;
        AppendCommitRecord(t->tenant_id, t->timeline_id, lsn, time, w->mutations + begin,
                           (*w->ends)[b] - begin, w->crcs.data() + begin, &records);
        w->results.push_back({lsn, time});
      }
      valid.push_back(w);
      targets.push_back(t);
    }
  }
  if (valid.empty()) return;
  HopTrace::Mark("records_built", records.records());
  absl::Status s = AppendToLog(&records);
  records.Clear();  // drops the references to the writers' values
  if (!s.ok()) {
    for (Writer* w : valid) w->status = s;
    return;
  }
  absl::MutexLock l(&mu_);
  size_t commits = 0;
  for (Writer* w : valid) commits += w->ends->size();
  HopTrace::Mark("apply_locked", commits);
  for (size_t i = 0; i < valid.size(); ++i) {
    Writer* w = valid[i];
    stat_bytes_ += w->bytes;
    for (size_t b = 0, begin = 0; b < w->ends->size(); begin = (*w->ends)[b++]) {
      ApplyCommit(targets[i], w->results[b].lsn, w->results[b].time_micros, w->mutations + begin,
                  (*w->ends)[b] - begin, w->crcs.data() + begin);
    }
  }
  stat_commits_ += commits;
  ++stat_groups_;
  HopTrace::Mark("applied", commits);
}

void Engine::ApplyCommit(Timeline* tl, uint64_t lsn, int64_t time_micros,
                         const MutationView* mutations, size_t n, const uint32_t* crcs) {
  int64_t size = tl->points.empty() ? 0 : tl->points.back().logical_size;
  uint64_t bytes = 0;
  if (!tl->active) tl->active = std::make_shared<Arena>(next_layer_id_++);
  for (size_t i = 0; i < n; ++i) {
    const MutationView& m = mutations[i];
    const Timeline* owner = nullptr;
    const VersionRef* old = Resolve(tl, lsn, m.key, &owner);
    if (old != nullptr && !old->tombstone()) size -= old->len;
    VersionRef ref{lsn, 0, tl->active->id(), kTombstoneLen, crcs[i]};
    bytes += m.key.size();
    if (!m.tombstone) {
      ref.len = static_cast<uint32_t>(m.value.size());
      size += ref.len;
      bytes += ref.len;
    }
    ref.offset = tl->active->Add(m.key, lsn, m.value, m.tombstone, crcs[i]);
    Timeline::Versions& v = tl->GetOrCreate(m.key);
    if (!v.empty() && v.back().lsn == lsn) {
      tl->diverged_bytes -= v.back().bytes();
      v.back() = ref;
    } else {
      v.push_back(ref);
    }
    tl->diverged_bytes += ref.bytes();
  }
  tl->head_lsn = lsn;
  tl->points.push_back({lsn, time_micros, bytes, size});
}

absl::StatusOr<Timeline*> Engine::FindTimeline(const std::string& tenant_id,
                                               const std::string& timeline_id) {
  auto it = timelines_.find(TimelineKey(tenant_id, timeline_id));
  if (it == timelines_.end()) {
    if (tenants_.count(tenant_id) == 0) {
      return absl::NotFoundError(absl::StrCat(
          "tenant ", tenant_id, " not found; list tenants with `pagectl tenant list`"));
    }
    return absl::NotFoundError(
        absl::StrCat("timeline ", timeline_id, " not found in tenant ", tenant_id,
                     "; list timelines with `pagectl timeline list --tenant ", tenant_id, "`"));
  }
  if (!it->second->broken.empty()) {
    return absl::DataLossError(
        absl::StrCat("timeline ", timeline_id, " is broken: ", it->second->broken));
  }
  return it->second.get();
}

EngineStats Engine::Stats() {
  EngineStats s;
  {
    absl::ReaderMutexLock l(&mu_);
    s.tenants = tenants_.size();
    s.timelines = timelines_.size();
    for (const auto& [id, tl] : timelines_) {
      s.layer_files += tl->layers.size();
      for (const auto& [lid, layer] : tl->layers) s.layer_bytes += layer->file_size();
      s.memtable_bytes += tl->mem_bytes();
    }
  }
  s.commits = stat_commits_;
  s.commit_groups = stat_groups_;
  s.bytes_committed = stat_bytes_;
  s.checkpoints = stat_checkpoints_;
  s.compactions = stat_compactions_;
  s.gc_runs = stat_gc_runs_;
  s.gc_versions_dropped = stat_gc_dropped_;
  s.log_zero_fills = stat_zero_fills_;
  return s;
}

}  // namespace pgbranch::storage
