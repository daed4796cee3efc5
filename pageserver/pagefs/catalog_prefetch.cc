#include "pageserver/pagefs/catalog_prefetch.h"

#include <dirent.h>

#include <optional>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "pageserver/fs/fs_layout.h"
#include "pageserver/pagefs/dir_walk.h"

namespace pgbranch::pagefs {
namespace {

constexpr uint64_t kFirstNormalObjectId = 16384;
constexpr uint64_t kTemplate1Oid = 1;
constexpr uint64_t kTemplate0Oid = 4;

std::optional<uint64_t> Oid(const std::string& name) {
  uint64_t oid;
  if (name.empty() || !absl::c_all_of(name, absl::ascii_isdigit) || !absl::SimpleAtoi(name, &oid))
    return std::nullopt;
  return oid;
}

void AddCatalogs(PageFs* pfs, uint64_t dir, uint32_t max_blocks,
                 std::vector<PageFs::PrefetchFile>* out) {
  for (const DirListing& e : DirWalk::Entries(pfs, dir)) {
    if (e.dtype != DT_REG) continue;
    std::optional<uint64_t> relfilenode = Oid(e.name);
    if ((relfilenode && *relfilenode < kFirstNormalObjectId) || e.name == "pg_filenode.map") {
      out->push_back({e.ino, max_blocks});
    }
  }
}

}  // namespace

std::vector<PageFs::PrefetchFile> PostgresCatalogPlan(PageFs* pfs, const std::string& data_dir,
                                                      uint32_t max_blocks) {
  std::vector<PageFs::PrefetchFile> plan;
  std::optional<uint64_t> dir = DirWalk::Dir(pfs, data_dir);
  if (!dir) return plan;
  if (auto global = DirWalk::Child(pfs, *dir, "global", DT_DIR))
    AddCatalogs(pfs, *global, max_blocks, &plan);
  if (auto base = DirWalk::Child(pfs, *dir, "base", DT_DIR)) {
    for (const DirListing& db : DirWalk::Entries(pfs, *base)) {
      std::optional<uint64_t> oid = Oid(db.name);
      if (db.dtype != DT_DIR || !oid || *oid == kTemplate1Oid || *oid == kTemplate0Oid) continue;
      AddCatalogs(pfs, db.ino, max_blocks, &plan);
    }
  }
  return plan;
}

}  // namespace pgbranch::pagefs
