#include "pageserver/pagefs/dir_walk.h"

#include <dirent.h>

#include "absl/strings/str_split.h"
#include "pageserver/fs/fs_layout.h"

namespace pgbranch::pagefs {

std::vector<DirListing> DirWalk::Entries(PageFs* pfs, uint64_t ino) {
  std::vector<DirListing> out;
  if (pfs->ReadDir(ino, &out) != 0) return {};
  std::vector<DirListing> entries;
  for (auto& e : out) {
    if (e.name != "." && e.name != "..") entries.push_back(std::move(e));
  }
  return entries;
}

std::optional<uint64_t> DirWalk::Child(PageFs* pfs, uint64_t dir, const std::string& name,
                                       uint8_t type) {
  for (const DirListing& e : Entries(pfs, dir)) {
    if (e.name == name && e.dtype == type) return e.ino;
  }
  return std::nullopt;
}

std::optional<uint64_t> DirWalk::Dir(PageFs* pfs, const std::string& path) {
  std::optional<uint64_t> dir = fs::kRootIno;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    dir = Child(pfs, *dir, std::string(part), DT_DIR);
    if (!dir) return std::nullopt;
  }
  return dir;
}

}  // namespace pgbranch::pagefs
