#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "pageserver/storage/env.h"

// Plain value types of the pageserver engine's public API.
namespace pgbranch::storage {

// How much history a timeline keeps readable. A version older than the window is dropped unless a
// child branch point or a lease still needs it. Either rule may be unset (0); with both set, the
// history either rule wants is kept.
struct Retention {
  uint64_t history_seconds = 0;
  uint64_t history_bytes = 0;
};

struct Mutation {
  std::string key;
  std::string value;
  bool tombstone = false;
};

// A Mutation by reference: the bytes belong to the caller (a received frame, a request message)
// and must stay valid until the commit that takes them returns.
struct MutationView {
  std::string_view key;
  std::string_view value;
  bool tombstone = false;
};

struct TenantInfo {
  std::string tenant_id;
  std::string root_timeline_id;  // the first root timeline, if any
  int64_t created_micros = 0;
  uint32_t timeline_count = 0;
};

struct TimelineInfo {
  std::string tenant_id;
  std::string timeline_id;
  std::string ancestor_id;  // empty for a root timeline
  uint64_t ancestor_lsn = 0;
  uint64_t head_lsn = 0;
  uint64_t oldest_readable_lsn = 0;
  int64_t logical_size = 0;     // bytes of data visible at head
  uint64_t diverged_bytes = 0;  // bytes this timeline wrote itself and still retains
  uint64_t generation = 0;      // current writer generation (0: never acquired)
  int64_t created_micros = 0;
  int64_t head_time_micros = 0;
  Retention retention;
  std::vector<std::string> children;
  uint32_t layer_files = 0;
};

struct CreateTimelineOptions {
  std::string tenant_id;
  std::string timeline_id;             // empty: generate one
  std::string ancestor_id;             // empty: a new root timeline
  uint64_t ancestor_lsn = 0;           // 0: the ancestor's head
  std::optional<int64_t> at_micros;    // branch as of this wall-clock time instead
  std::optional<Retention> retention;  // default: the engine's
};

struct ReadValue {
  bool found = false;
  std::string data;
};

struct ReadResult {
  uint64_t lsn = 0;
  std::vector<ReadValue> values;
};

struct ScanEntry {
  std::string key;
  std::string value;
};

struct ScanResult {
  uint64_t lsn = 0;
  std::vector<ScanEntry> entries;
  bool more = false;  // the range holds more keys after the last entry
};

struct CommitResult {
  uint64_t lsn = 0;
  int64_t time_micros = 0;
};

struct ResetResult {
  uint64_t ancestor_lsn = 0;
  std::string backup_timeline_id;
  uint64_t generation = 0;
};

struct EngineStats {
  uint64_t tenants = 0;
  uint64_t timelines = 0;
  uint64_t layer_files = 0;
  uint64_t layer_bytes = 0;
  uint64_t memtable_bytes = 0;
  uint64_t log_bytes = 0;
  uint64_t commits = 0;
  uint64_t commit_groups = 0;
  uint64_t bytes_committed = 0;
  uint64_t checkpoints = 0;
  uint64_t compactions = 0;
  uint64_t gc_runs = 0;
  uint64_t gc_versions_dropped = 0;
  uint64_t log_zero_fills = 0;  // log segment files zero-filled (new segments and spare files)
};

struct EngineOptions {
  std::string data_dir;
  Env* env = nullptr;      // default: DefaultEnv()
  Clock* clock = nullptr;  // default: RealClock()
  Retention default_retention{7 * 24 * 3600, 0};
  uint64_t memtable_flush_bytes = 256ull << 20;  // checkpoint when memtables exceed this
  uint32_t max_layers_per_timeline = 8;          // compaction merges a timeline above this
  uint64_t max_batch_bytes = 64ull << 20;
  uint64_t max_key_bytes = 4096;
  uint64_t max_value_bytes = 1ull << 20;
  uint32_t max_group_commits = 256;           // commits merged into one log write
  uint64_t log_prealloc_bytes = 64ull << 20;  // the zero-filled size of a log segment
  // Background maintenance (checkpoints, GC, compaction); off in unit tests that drive it.
  bool background_maintenance = true;
  int gc_interval_seconds = 60;
  // Checkpoint when the engine is closed, so the next start replays no log.
  bool checkpoint_on_close = true;
};

}  // namespace pgbranch::storage
