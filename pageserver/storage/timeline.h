#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "pageserver/storage/arena.h"
#include "pageserver/storage/layer_file.h"
#include "pageserver/storage/types.h"

namespace pgbranch::storage {

// Where one version of a key lives: layer `layer` of the owning timeline - an in-memory arena or
// the layer file that replaced it (same id, same offset) - at `offset`.

struct VersionRef {
  uint64_t lsn;
  uint64_t offset;
  uint32_t layer;
  uint32_t len;  // kTombstoneLen for a deletion
  uint32_t crc;
  bool tombstone() const { return len == kTombstoneLen; }
  uint64_t bytes() const { return tombstone() ? 0 : len; }
};

// One commit point of a timeline: its LSN, wall-clock time, bytes written and the logical size
// after it. The first point is the timeline's start (LSN 0 for a root, the branch point for a
// child).
struct LsnPoint {
  uint64_t lsn;
  int64_t time_micros;
  uint64_t bytes;
  int64_t logical_size;
};

struct Lease {
  uint64_t lsn;
  int64_t expires_micros;
};

// One branch's history: metadata, the layer map (an in-memory index from key to its versions in
// this timeline), the in-memory layer and the layer files.
//
// Invariants:
//  - versions of a key are sorted by LSN, all > ancestor_lsn and <= head_lsn;
//  - every version with lsn <= gc_cutoff except the newest one (and the newest at or below each
//    retain point) has been dropped;
//  - the engine's state mutex guards everything here; only the engine's write-queue holder
//    mutates.
class Timeline {
 public:
  using Versions = std::vector<VersionRef>;

  std::string tenant_id;
  std::string timeline_id;
  Timeline* ancestor = nullptr;
  uint64_t ancestor_lsn = 0;
  uint64_t head_lsn = 0;
  uint64_t generation = 0;
  uint64_t gc_cutoff = 0;
  int64_t created_micros = 0;
  Retention retention;
  std::vector<Lease> leases;
  std::vector<LsnPoint> points;
  std::vector<Timeline*> children;
  // A layer file of this timeline failed to load: every read answers with this error.
  std::string broken;

  // Layer map.
  const Versions* Find(std::string_view key) const;
  Versions* FindMutable(std::string_view key);
  Versions& GetOrCreate(std::string_view key);
  void Erase(std::string_view key);
  const std::map<std::string, Versions, std::less<>>& keys() const { return keys_; }
  std::map<std::string, Versions, std::less<>>& mutable_keys() { return keys_; }
  void ClearIndex();
  // Moves the layer map, in-memory layers and layer files of `other` here (reset with backup).
  void TakeDataFrom(Timeline& other);

  // The newest version <= lsn in this timeline only, or nullptr.
  static const VersionRef* NewestAtOrBelow(const Versions& v, uint64_t lsn);

  // In-memory layers: the arena commits go to, and frozen arenas waiting to become files.
  std::shared_ptr<Arena> active;
  std::map<uint32_t, std::shared_ptr<Arena>> frozen;
  uint64_t mem_bytes() const;
  void DropMem();

  std::map<uint32_t, std::shared_ptr<LayerFile>> layers;
  uint64_t diverged_bytes = 0;

  // The logical size and time at `lsn` (from the point table).
  const LsnPoint* PointAtOrBelow(uint64_t lsn) const;

 private:
  std::map<std::string, Versions, std::less<>> keys_;
  absl::flat_hash_map<std::string_view, Versions*> hash_;  // views into keys_
};

// The newest LSN of `tl` committed at or before `micros` (OutOfRange before its oldest point).
absl::StatusOr<uint64_t> LsnAtTime(const Timeline& tl, int64_t micros);

}  // namespace pgbranch::storage
