#include "pageserver/pagefs/volatile_files.h"

#include "absl/strings/str_split.h"

namespace pgbranch::pagefs {

namespace {
constexpr uint64_t kRootIno = 1;  // FUSE_ROOT_ID
}  // namespace

VolatileFiles::VolatileFiles(const std::vector<std::string>& paths) {
  for (const std::string& path : paths) {
    std::vector<std::string> parts;
    for (absl::string_view p : absl::StrSplit(path, '/', absl::SkipEmpty())) {
      if (p == "." || p == "..") continue;
      parts.emplace_back(p);
    }
    if (parts.empty()) continue;
    dirs_.emplace(kRootIno, std::make_pair(paths_.size(), size_t{0}));
    paths_.push_back(std::move(parts));
  }
}

void VolatileFiles::Note(uint64_t parent, std::string_view name, uint64_t ino, bool is_dir) {
  // Every LOOKUP and CREATE comes here: most names are on no path, decided without the lock
  // (paths_ never changes).
  if (!MayMatch(name)) return;
  std::lock_guard<std::mutex> lock(mu_);
  // A name the kernel learns again may now be another inode (a rename over it, a new file after
  // an unlink): nothing else is forgotten here; Forget drops an inode the kernel let go.
  auto [begin, end] = dirs_.equal_range(parent);
  std::vector<std::pair<size_t, size_t>> next_dirs;
  for (auto it = begin; it != end; ++it) {
    const auto [path, matched] = it->second;
    const std::vector<std::string>& parts = paths_[path];
    if (parts[matched] != name) continue;
    if (matched + 1 == parts.size()) {
      if (!is_dir) files_[ino] = path;
    } else if (is_dir) {
      next_dirs.emplace_back(path, matched + 1);
    }
  }
  for (const auto& d : next_dirs) {
    bool known = false;
    auto [b, e] = dirs_.equal_range(ino);
    for (auto it = b; it != e; ++it) known = known || it->second == d;
    if (!known) dirs_.emplace(ino, d);
  }
}

bool VolatileFiles::MayMatch(std::string_view name) const {
  for (const auto& parts : paths_) {
    for (const std::string& part : parts) {
      if (part == name) return true;
    }
  }
  return false;
}

bool VolatileFiles::Contains(uint64_t ino) const {
  if (paths_.empty()) return false;
  std::lock_guard<std::mutex> lock(mu_);
  return files_.count(ino) > 0;
}

void VolatileFiles::Forget(uint64_t ino) {
  if (paths_.empty() || ino == kRootIno) return;
  std::lock_guard<std::mutex> lock(mu_);
  files_.erase(ino);
  dirs_.erase(ino);
}

}  // namespace pgbranch::pagefs
