#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pageserver/fs/fs_layout.h"
#include "pageserver/pagectl/client.h"
#include "pageserver/pagectl/progress.h"

// Materialises the filesystem stored in a timeline (fs_layout.h), as of one LSN, into a local
// directory that must be empty or absent.
//
// Every read uses the same LSN (the head is resolved once, up front), so the result is one
// consistent state even while a writer keeps committing. Modes, times, symlinks, hard links and
// sparse holes are restored; owners too when running as root. Untrusted names ("..", "a/b") and
// directory cycles in the stored tree are reported as DATA_LOSS instead of being followed.
namespace pgbranch::pagectl {

struct ExportStats {
  uint64_t files = 0;
  uint64_t directories = 0;
  uint64_t symlinks = 0;
  uint64_t hard_links = 0;
  uint64_t skipped = 0;
  uint64_t bytes = 0;
  uint64_t lsn = 0;  // the LSN exported
};

class TreeExporter {
 public:
  // `lsn` 0 exports the head.
  TreeExporter(const Client* client, std::string tenant_id, std::string timeline_id, uint64_t lsn,
               Progress* progress);

  absl::StatusOr<ExportStats> Export(const std::string& dir);

 private:
  using Entries = std::vector<std::pair<std::string, fs::DirEntry>>;

  // Reads the superblock and the root inode, fixing lsn_; returns the root's attributes.
  absl::StatusOr<fs::InodeAttr> ReadRoot();
  // Reads `keys` as of lsn_; a missing key yields nullopt.
  absl::StatusOr<std::vector<std::optional<std::string>>> ReadKeys(
      const std::vector<std::string>& keys) const;
  // The entries of directory `ino`, in name order (pages through Scan).
  absl::StatusOr<Entries> ListDirectory(uint64_t ino) const;
  // The attributes of each entry's inode.
  absl::StatusOr<std::vector<fs::InodeAttr>> ReadAttrs(const Entries& entries) const;

  // Populates the existing directory `path` and then applies `attr` to it.
  absl::Status ExportDirectory(const std::string& path, uint64_t ino, const fs::InodeAttr& attr);
  absl::Status ExportEntry(const std::string& path, uint64_t ino, const fs::InodeAttr& attr);
  absl::Status ExportRegular(const std::string& path, uint64_t ino, const fs::InodeAttr& attr);
  absl::Status ExportFileData(int fd, const std::string& path, uint64_t ino, uint64_t size);
  absl::Status ApplyAttributes(const std::string& path, const fs::InodeAttr& attr) const;

  const Client* client_;
  std::string tenant_id_;
  std::string timeline_id_;
  uint64_t lsn_;
  Progress* progress_;
  bool restore_owner_;
  std::set<uint64_t> visited_dirs_;
  std::map<uint64_t, std::string> linked_files_;  // ino -> first path, for nlink > 1
  ExportStats stats_;
};

}  // namespace pgbranch::pagectl
