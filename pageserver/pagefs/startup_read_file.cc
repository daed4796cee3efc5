#include "pageserver/pagefs/startup_read_file.h"

#include <dirent.h>
#include <fcntl.h>

#include <map>
#include <optional>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "pageserver/fs/fs_layout.h"
#include "pageserver/pagefs/dir_walk.h"

namespace pgbranch::pagefs {
namespace {

constexpr uint64_t kMaxFileBytes = 4 << 20;

}  // namespace

std::string StartupReadFile::Load(PageFs* pfs) {
  std::optional<uint64_t> ino = DirWalk::Child(pfs, fs::kRootIno, StartupReads::kFileName, DT_REG);
  if (!ino || pfs->Open(*ino, O_RDONLY) != 0) return "";
  std::string text;
  fs::InodeAttr attr;
  if (pfs->GetAttr(*ino, &attr) == 0 && attr.size <= kMaxFileBytes &&
      pfs->Read(*ino, 0, attr.size, &text) != 0) {
    text.clear();
  }
  pfs->Release(*ino);
  return text;
}

std::vector<PageFs::PrefetchFile> StartupReadFile::Plan(
    PageFs* pfs, const std::vector<StartupReads::File>& files) {
  std::vector<PageFs::PrefetchFile> plan;
  // Directory path -> its regular files by name (listed once each).
  std::map<std::string, std::optional<std::unordered_map<std::string, uint64_t>>> dirs;
  for (const StartupReads::File& f : files) {
    const size_t slash = f.path.rfind('/');
    const std::string dir = slash == std::string::npos ? "" : f.path.substr(0, slash);
    const std::string name = f.path.substr(slash == std::string::npos ? 0 : slash + 1);
    auto [it, added] = dirs.try_emplace(dir);
    if (added) {
      if (std::optional<uint64_t> d = DirWalk::Dir(pfs, dir)) {
        it->second.emplace();
        for (const DirListing& e : DirWalk::Entries(pfs, *d)) {
          if (e.dtype == DT_REG) (*it->second)[e.name] = e.ino;
        }
      }
    }
    if (!it->second) continue;
    auto file = it->second->find(name);
    if (file == it->second->end()) continue;
    PageFs::PrefetchFile p{file->second, 0, {}};
    for (const auto& [first, count] : f.ranges) {
      for (uint64_t b = first; b < first + count; ++b) p.blocks.push_back(b);
    }
    plan.push_back(std::move(p));
  }
  return plan;
}

std::vector<StartupReads::File> StartupReadFile::Name(
    PageFs* pfs, const std::string& data_dir, const std::vector<StartupReads::Recorded>& recorded) {
  std::unordered_map<uint64_t, std::string> paths;
  std::optional<uint64_t> root = DirWalk::Dir(pfs, data_dir);
  // template1 (OID 1) and template0 (4): a start never reads them; a CREATE DATABASE in the
  // window copies one whole, which no later start would read again.
  const std::string templates = data_dir + "/base";
  if (root) {
    std::vector<std::pair<uint64_t, std::string>> todo = {{*root, data_dir}};
    while (!todo.empty()) {
      auto [dir, path] = std::move(todo.back());
      todo.pop_back();
      for (const DirListing& e : DirWalk::Entries(pfs, dir)) {
        std::string child = absl::StrCat(path, "/", e.name);
        if (e.dtype == DT_REG) {
          paths.emplace(e.ino, std::move(child));
        } else if (e.dtype == DT_DIR && !(dir == *root && e.name == "pg_wal") &&
                   !(path == templates && (e.name == "1" || e.name == "4"))) {
          todo.push_back({e.ino, std::move(child)});
        }
      }
    }
  }
  std::vector<StartupReads::File> out;
  for (const StartupReads::Recorded& r : recorded) {
    auto it = paths.find(r.ino);
    if (it == paths.end()) continue;  // a WAL segment, a file deleted since
    out.push_back({it->second, StartupReads::Ranges(r.blocks)});
  }
  return out;
}

int StartupReadFile::Save(PageFs* pfs, const std::string& text) {
  fs::InodeAttr attr;
  uint64_t ino = 0;
  int err =
      pfs->Create(fs::kRootIno, kTempName, 0600, O_WRONLY | O_CREAT | O_TRUNC, 0, 0, &attr, &ino);
  if (err != 0) return err;
  err = pfs->Write(ino, 0, text, /*dsync=*/false);
  if (err == 0) err = pfs->Fsync(ino);
  pfs->Release(ino);
  if (err == 0) {
    err = pfs->Rename(fs::kRootIno, kTempName, fs::kRootIno, StartupReads::kFileName, 0);
  }
  if (err != 0) {
    pfs->Unlink(fs::kRootIno, kTempName);
    return err;
  }
  return pfs->FsyncDir(fs::kRootIno);
}

int StartupReadFile::Keep(PageFs* pfs, const std::string& data_dir,
                          const std::vector<StartupReads::Recorded>& recorded, uint64_t* pages) {
  *pages = 0;
  std::vector<StartupReads::File> files = Name(pfs, data_dir, recorded);
  std::string text = StartupReads::Encode(files);
  if (files.empty() || text == Load(pfs)) return 0;
  if (int err = Save(pfs, text)) return err;
  for (const StartupReads::File& f : files) {
    for (const auto& range : f.ranges) *pages += range.second;
  }
  return 0;
}

}  // namespace pgbranch::pagefs
