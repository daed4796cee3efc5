#include "pageserver/pagefs/wal_prefetch.h"

#include <dirent.h>

#include <cstring>
#include <map>
#include <optional>

#include "absl/strings/str_format.h"
#include "pageserver/fs/fs_layout.h"
#include "pageserver/pagefs/dir_walk.h"

namespace pgbranch::pagefs {
namespace {

constexpr size_t kRedoOffset = 40;      // ControlFileData.checkPointCopy.redo
constexpr size_t kTimelineOffset = 48;  // ControlFileData.checkPointCopy.ThisTimeLineID
constexpr size_t kPageAddrOffset = 8;   // XLogPageHeaderData.xlp_pageaddr
constexpr uint64_t kMinSegSize = 1 << 20;
constexpr uint64_t kMaxSegSize = 1 << 30;

template <typename T>
T LoadLe(const std::string& bytes, size_t at) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) {
    v |= static_cast<T>(static_cast<unsigned char>(bytes[at + i])) << (8 * i);
  }
  return v;
}

// The first `n` bytes of file `ino`, if it has them.
std::optional<std::string> Head(PageFs* pfs, uint64_t ino, size_t n) {
  std::string out;
  if (pfs->Read(ino, 0, n, &out) != 0 || out.size() < n) return std::nullopt;
  return out;
}

}  // namespace

std::string WalSegmentName(uint32_t tli, uint64_t segno, uint64_t seg_size) {
  const uint64_t per_id = 0x100000000ull / seg_size;
  return absl::StrFormat("%08X%08X%08X", tli, segno / per_id, segno % per_id);
}

std::vector<WalReadAhead> PostgresWalPlan(PageFs* pfs, const std::string& data_dir,
                                          uint64_t max_bytes) {
  std::vector<WalReadAhead> plan;
  std::optional<uint64_t> dir = DirWalk::Dir(pfs, data_dir);
  if (!dir) return plan;
  std::optional<uint64_t> global = DirWalk::Child(pfs, *dir, "global", DT_DIR);
  std::optional<uint64_t> control =
      global ? DirWalk::Child(pfs, *global, "pg_control", DT_REG) : std::nullopt;
  std::optional<std::string> head =
      control ? Head(pfs, *control, kTimelineOffset + 4) : std::nullopt;
  std::optional<uint64_t> wal = DirWalk::Child(pfs, *dir, "pg_wal", DT_DIR);
  if (!head || !wal) return plan;
  const uint64_t redo = LoadLe<uint64_t>(*head, kRedoOffset);
  const uint32_t tli = LoadLe<uint32_t>(*head, kTimelineOffset);
  if (tli == 0) return plan;
  std::map<std::string, DirListing> segments;
  for (DirListing& e : DirWalk::Entries(pfs, *wal)) segments.emplace(e.name, std::move(e));
  // The segment size: the size of a segment of the timeline (PostgreSQL's are all alike).
  uint64_t seg_size = 0;
  const std::string tli_prefix = absl::StrFormat("%08X", tli);
  for (const auto& [name, e] : segments) {
    fs::InodeAttr attr;
    if (name.size() != 24 || name.compare(0, 8, tli_prefix) != 0 || e.dtype != DT_REG) continue;
    if (pfs->GetAttr(e.ino, &attr) != 0) return plan;
    seg_size = attr.size;
    break;
  }
  if (seg_size < kMinSegSize || seg_size > kMaxSegSize || (seg_size & (seg_size - 1)) != 0) {
    return plan;
  }
  uint64_t budget = max_bytes / fs::kPageSize;
  const uint64_t seg_pages = seg_size / fs::kPageSize;
  for (uint64_t segno = redo / seg_size; budget > 0; ++segno) {
    auto it = segments.find(WalSegmentName(tli, segno, seg_size));
    if (it == segments.end() || it->second.dtype != DT_REG) break;
    uint64_t from = segno == redo / seg_size ? (redo % seg_size) / fs::kPageSize : 0;
    if (from == 0) {
      // Not the redo point's own segment: only if its first page says it is this segment.
      std::optional<std::string> page = Head(pfs, it->second.ino, kPageAddrOffset + 8);
      if (!page || LoadLe<uint64_t>(*page, kPageAddrOffset) != segno * seg_size) break;
    }
    uint64_t to = std::min(seg_pages, from + budget);
    plan.push_back({it->second.ino, from, to});
    budget -= to - from;
  }
  return plan;
}

}  // namespace pgbranch::pagefs
