#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "pageserver/storage/log_batch.h"
#include "pageserver/storage/log_writer.h"
#include "pageserver/storage/timeline.h"
#include "pageserver/storage/types.h"

namespace pgbranch::storage {

namespace pb {
class LogRecord;
class Reset;
class Manifest;
}  // namespace pb

// The pageserver's versioned copy-on-write store.
//
// Durability: every mutation (commits and metadata changes) is appended to the log and
// fdatasync'd before the call returns OK (acknowledged means durable). Concurrent commits share
// one log write and one fdatasync (group commit). A checkpoint writes the in-memory layers to
// immutable layer files, then a manifest (atomically renamed), then drops old log segments.
// Recovery = manifest + layer files + replay of the log segments the manifest does not cover.
//
// Concurrency: all mutators pass through one write queue (LevelDB's writer queue); the holder of
// its front is the only thread that changes state. Readers take `mu_` shared and never wait for
// the log. Thread-safe.
class Engine {
 public:
  static absl::StatusOr<std::unique_ptr<Engine>> Open(const EngineOptions& options);
  ~Engine();

  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Tenants. Creating a tenant also creates its root timeline.
  absl::StatusOr<TenantInfo> CreateTenant(const std::string& tenant_id,
                                          const std::string& root_timeline_id = "");
  absl::Status DeleteTenant(const std::string& tenant_id);
  std::vector<TenantInfo> ListTenants();

  // Timelines. Creating a child is metadata only: O(1) in the size of the parent.
  absl::StatusOr<TimelineInfo> CreateTimeline(const CreateTimelineOptions& options);
  // Refused (FailedPrecondition) while children exist.
  absl::Status DeleteTimeline(const std::string& tenant_id, const std::string& timeline_id);
  absl::StatusOr<std::vector<TimelineInfo>> ListTimelines(const std::string& tenant_id);
  absl::StatusOr<TimelineInfo> GetTimeline(const std::string& tenant_id,
                                           const std::string& timeline_id);

  // Returns a new writer generation; commits under any older generation are rejected from now on.
  absl::StatusOr<uint64_t> AcquireWriter(const std::string& tenant_id,
                                         const std::string& timeline_id);
  // Commits an atomic batch at the timeline's next LSN. Durable before it returns.
  absl::StatusOr<CommitResult> Commit(const std::string& tenant_id, const std::string& timeline_id,
                                      uint64_t generation, std::vector<Mutation> mutations);
  // Commits `batches` in order as one writer: each an atomic batch at its own consecutive LSN,
  // all of them in one log write and fdatasync (a commit stream's queued requests). Durable
  // before it returns. The batches before the first invalid one are committed and the sequence
  // stops there with that batch's error (`results` holds one entry per committed batch); a
  // fenced generation or a log failure commits none of them. May shorten `batches`.
  absl::Status CommitSequence(const std::string& tenant_id, const std::string& timeline_id,
                              uint64_t generation, std::vector<std::vector<Mutation>>* batches,
                              std::vector<CommitResult>* results);
  // CommitSequence by reference, the commit channel's: batch i is
  // mutations[(*ends)[i - 1], (*ends)[i]) (from 0 for the first). The bytes the views refer to
  // are copied only into the log's write (a small value) and the memtable; they must stay valid
  // until the call returns. May shorten `ends` (to the batches committed).
  absl::Status CommitSequence(const std::string& tenant_id, const std::string& timeline_id,
                              uint64_t generation, const std::vector<MutationView>& mutations,
                              std::vector<size_t>* ends, std::vector<CommitResult>* results);

  // Reads keys as of `lsn` (0: head).
  absl::StatusOr<ReadResult> Read(const std::string& tenant_id, const std::string& timeline_id,
                                  uint64_t lsn, const std::vector<std::string>& keys);
  // Keys in [start, end) (end empty: unbounded) as of `lsn`, at most `limit` entries. With
  // `keys_only` the values are left empty and no layer file is read.
  absl::StatusOr<ScanResult> Scan(const std::string& tenant_id, const std::string& timeline_id,
                                  uint64_t lsn, const std::string& start, const std::string& end,
                                  uint32_t limit, bool keys_only = false);

  // The newest LSN committed at or before `micros`, and the commit time of an LSN.
  absl::StatusOr<uint64_t> LsnForTimestamp(const std::string& tenant_id,
                                           const std::string& timeline_id, int64_t micros);
  absl::StatusOr<int64_t> TimestampForLsn(const std::string& tenant_id,
                                          const std::string& timeline_id, uint64_t lsn);

  // Resets a child timeline to its parent's head. With `backup_id` non-empty the old state is kept
  // as a new timeline of that id (which also adopts the old children); the writer is fenced.
  absl::StatusOr<ResetResult> ResetTimeline(const std::string& tenant_id,
                                            const std::string& timeline_id,
                                            const std::string& backup_id);
  // Rewinds a timeline (a root too) to `lsn` of its own history, in one log record: the current
  // state becomes the new timeline `backup_id` (same ancestor, data, history and children), and
  // the timeline an empty child of it at `lsn`; the writer is fenced. A crash leaves either the
  // old state or the new one. ancestor_lsn of the result is `lsn`.
  absl::StatusOr<ResetResult> RewindTimeline(const std::string& tenant_id,
                                             const std::string& timeline_id, uint64_t lsn,
                                             const std::string& backup_id);
  absl::StatusOr<TimelineInfo> SetRetention(const std::string& tenant_id,
                                            const std::string& timeline_id,
                                            const Retention& retention);
  // Keeps `lsn` readable until `ttl_seconds` from now, whatever the retention window.
  absl::Status AddLease(const std::string& tenant_id, const std::string& timeline_id, uint64_t lsn,
                        int64_t ttl_seconds);

  // Maintenance, also run by the background thread.
  absl::Status Checkpoint();
  absl::Status RunGc();

  EngineStats Stats();

  // Keeps the log's spares ready: the next segment (number log_seq_ + 1) and one zero-filled
  // "recycle-" file behind it, so that a full segment switches to a ready file and the next
  // spare after it is the waiting file, renamed. The zero-fill of a new waiting file (a whole
  // segment written and synced, which slows every commit's fdatasync on the same disk meanwhile)
  // waits until the log has been idle for kSpareIdleMicros (a new engine's start is). Under
  // steady load no waiting file is made: the next segment is zero-filled after each switch, as
  // it would be without the waiting file. The background thread calls it; unit tests drive it.
  // Returns whether the waiting file is still owed (the caller should come back soon).
  absl::StatusOr<bool> PrepareLogSpares();
  static constexpr int64_t kSpareIdleMicros = 500'000;

  // Generates a fresh random 32-hex-digit id.
  static std::string NewId();
  static std::string TimelineKey(const std::string& tenant_id, const std::string& timeline_id) {
    return tenant_id + "/" + timeline_id;
  }

 private:
  struct Writer;
  struct CommitOp;

  explicit Engine(const EngineOptions& options);

  absl::Status Recover();
  absl::Status LoadManifest(const pb::Manifest& manifest);
  absl::Status ReplayLog(uint64_t start_seq, uint64_t* last_seq);
  absl::Status StartNewSegment(uint64_t seq);
  // A writer for segment `seq`: a recycled segment file if one is waiting, else a new file
  // zero-filled to the segment size; its directory entry is synced.
  absl::StatusOr<std::unique_ptr<LogWriter>> CreateSegment(uint64_t seq);
  std::string SegmentPath(uint64_t seq) const;
  std::string LayerPath(uint32_t id) const;

  absl::Status ValidateBatch(const MutationView* mutations, size_t n, uint64_t* bytes) const;
  // Runs `fn` as the sole mutator (front of the write queue).
  absl::Status RunExclusive(const std::function<absl::Status()>& fn);
  void ProcessCommitGroup(std::vector<Writer*>& group);
  // Writes the records of `batch` to the log in one write and fdatasyncs; on failure truncates the
  // log back (up to the furthest byte written) and returns the error.
  absl::Status AppendToLog(LogBatch* batch);
  // Validates, logs and applies one metadata record. Caller is the queue holder.
  absl::Status LogAndApply(const std::vector<pb::LogRecord>& records);
  absl::Status ApplyRecord(const pb::LogRecord& record, bool replay)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `crcs` holds the checksum of each mutation's value.
  void ApplyCommit(Timeline* tl, uint64_t lsn, int64_t time_micros, const MutationView* mutations,
                   size_t n, const uint32_t* crcs) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::StatusOr<Timeline*> FindTimeline(const std::string& tenant_id,
                                         const std::string& timeline_id)
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::Status CheckReadableLsn(const Timeline* tl, uint64_t lsn) const;
  // Resolves the version of `key` visible at (tl, lsn), walking the ancestry.
  const VersionRef* Resolve(const Timeline* tl, uint64_t lsn, std::string_view key,
                            const Timeline** owner) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::Status ReadVersion(const Timeline* owner, const VersionRef& v, std::string* out) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  TimelineInfo MakeInfo(const Timeline* tl) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void DeleteTimelineLocked(Timeline* tl) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The rewind half of a Reset record (RewindTimeline).
  absl::Status ApplyRewindLocked(Timeline* tl, const pb::Reset& r)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Maintenance internals; the caller holds maint_mu_. A checkpoint holds the write queue only
  // to freeze the in-memory layers and switch log segments; files are written while commits go
  // on. Skips the work when nothing changed since the last checkpoint, unless `force`.
  absl::Status CheckpointLocked(bool force);
  absl::Status FlushArena(const std::shared_ptr<Arena>& arena);
  // Merges some of a timeline's layer files into one (size-tiered), or all of them when most of
  // their bytes are garbage.
  absl::Status MaybeCompact(const std::string& key);
  absl::Status PrepareNextSegment();
  // Writes a zero-filled segment-sized file as "spare.tmp", syncs it, then renames it to a
  // "recycle-spare-" name (recovery reads only numbered segments; the rename is atomic, so a
  // "recycle-" file is always whole) and syncs the directory.
  absl::Status FillSpareFile();
  // Paths of the "recycle-" files in wal/: retired segments and zero-filled spares, each a whole
  // segment that CreateSegment may rename into place instead of zero-filling a new one.
  std::vector<std::string> RecycledFiles() const;
  // Switches the log to the spare segment (making one now if none is ready). Queue holder only.
  absl::Status RollSegment();
  void DeleteOrphans(const std::set<uint32_t>& also_live);
  // How many retired log segments are kept for reuse ("recycle-" files).
  int MaxRecycledSegments() const;
  uint64_t ComputeCutoff(const Timeline* tl, int64_t now) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Drops versions below the cutoff that no reader can see any more; returns how many.
  uint64_t PruneTimeline(Timeline* tl) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void BackgroundLoop();

  const EngineOptions options_;
  Env* const env_;
  Clock* const clock_;

  // The write queue.
  absl::Mutex queue_mu_;
  std::deque<Writer*> writers_ ABSL_GUARDED_BY(queue_mu_);
  // A log failure that could not be undone; all later writes fail until restart.
  absl::Status poisoned_;
  LogBatch group_batch_;  // the commit group's records; the queue holder's, reused
  // Serialises checkpoints, GC and compaction.
  std::mutex maint_mu_;
  // The spare log segment (number log_seq_ + 1), zero-filled in the background ahead of the
  // moment the current segment fills up or a checkpoint starts a new one.
  absl::Mutex spare_mu_;
  std::unique_ptr<LogWriter> next_log_ ABSL_GUARDED_BY(spare_mu_);
  std::set<uint32_t> manifest_layers_;  // layer ids the on-disk manifest references

  // Only the queue holder touches the log; log_seq_ changes under spare_mu_ too.
  std::unique_ptr<LogWriter> log_;
  uint64_t log_seq_ = 0;
  uint64_t log_start_seq_ = 0;  // first segment not covered by the manifest
  std::atomic<uint32_t> next_layer_id_{1};
  // Something was logged, dropped or compacted since the last manifest.
  std::atomic<bool> dirty_{false};

  mutable absl::Mutex mu_;
  std::map<std::string, int64_t> tenants_ ABSL_GUARDED_BY(mu_);  // id -> created
  // Keyed by TimelineKey(tenant, timeline): timeline ids are unique within a tenant.
  std::map<std::string, std::unique_ptr<Timeline>> timelines_ ABSL_GUARDED_BY(mu_);

  std::atomic<uint64_t> stat_commits_{0}, stat_groups_{0}, stat_bytes_{0}, stat_checkpoints_{0},
      stat_compactions_{0}, stat_gc_runs_{0}, stat_gc_dropped_{0}, stat_zero_fills_{0};
  // When the log was last appended to (0: never since the start): PrepareLogSpares's idle test.
  std::atomic<int64_t> last_append_micros_{0};

  absl::Mutex bg_mu_;
  bool stopping_ ABSL_GUARDED_BY(bg_mu_) = false;
  bool spare_needed_ ABSL_GUARDED_BY(bg_mu_) = false;
  std::thread bg_thread_;
};

}  // namespace pgbranch::storage
