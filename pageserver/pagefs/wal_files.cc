#include "pageserver/pagefs/wal_files.h"

namespace pgbranch::pagefs {

void WalFiles::Note(uint64_t parent, std::string_view name, uint64_t ino, bool is_dir) {
  std::lock_guard<std::mutex> lock(mu_);
  if (is_dir) {
    if (name == "pg_wal") wal_dirs_.insert(ino);
    return;
  }
  if (wal_dirs_.count(parent) > 0) wal_files_.insert(ino);
}

bool WalFiles::Contains(uint64_t ino) const {
  std::lock_guard<std::mutex> lock(mu_);
  return wal_files_.count(ino) > 0;
}

void WalFiles::Forget(uint64_t ino) {
  std::lock_guard<std::mutex> lock(mu_);
  wal_files_.erase(ino);
  wal_dirs_.erase(ino);
}

}  // namespace pgbranch::pagefs
