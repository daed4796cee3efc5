#include "pageserver/pagefs/catalog_prefetch.h"

#include <dirent.h>

#include <optional>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "pageserver/fs/fs_layout.h"

namespace pgbranch::pagefs {
namespace {

constexpr uint64_t kFirstNormalObjectId = 16384;
constexpr uint64_t kTemplate1Oid = 1;
constexpr uint64_t kTemplate0Oid = 4;

// The entries of directory `ino` other than "." and ".."; empty on any error.
std::vector<DirListing> List(PageFs* pfs, uint64_t ino) {
  std::vector<DirListing> out;
  if (pfs->ReadDir(ino, &out) != 0) return {};
  std::vector<DirListing> entries;
  for (auto& e : out) {
    if (e.name != "." && e.name != "..") entries.push_back(std::move(e));
  }
  return entries;
}

std::optional<uint64_t> Child(PageFs* pfs, uint64_t dir, const std::string& name, uint8_t type) {
  for (const DirListing& e : List(pfs, dir)) {
    if (e.name == name && e.dtype == type) return e.ino;
  }
  return std::nullopt;
}

std::optional<uint64_t> Oid(const std::string& name) {
  uint64_t oid;
  if (name.empty() || !absl::c_all_of(name, absl::ascii_isdigit) || !absl::SimpleAtoi(name, &oid))
    return std::nullopt;
  return oid;
}

void AddCatalogs(PageFs* pfs, uint64_t dir, uint32_t max_blocks,
                 std::vector<PageFs::PrefetchFile>* out) {
  for (const DirListing& e : List(pfs, dir)) {
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
  std::optional<uint64_t> dir = fs::kRootIno;
  for (absl::string_view part : absl::StrSplit(data_dir, '/', absl::SkipEmpty())) {
    dir = Child(pfs, *dir, std::string(part), DT_DIR);
    if (!dir) return plan;
  }
  if (auto global = Child(pfs, *dir, "global", DT_DIR))
    AddCatalogs(pfs, *global, max_blocks, &plan);
  if (auto base = Child(pfs, *dir, "base", DT_DIR)) {
    for (const DirListing& db : List(pfs, *base)) {
      std::optional<uint64_t> oid = Oid(db.name);
      if (db.dtype != DT_DIR || !oid || *oid == kTemplate1Oid || *oid == kTemplate0Oid) continue;
      AddCatalogs(pfs, db.ino, max_blocks, &plan);
    }
  }
  return plan;
}

}  // namespace pgbranch::pagefs
