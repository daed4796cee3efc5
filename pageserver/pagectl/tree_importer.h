#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pageserver/fs/fs_layout.h"
#include "pageserver/pagectl/client.h"
#include "pageserver/pagectl/commit_batcher.h"
#include "pageserver/pagectl/progress.h"

// Writes a local directory tree into an empty timeline in the filesystem layout (fs_layout.h).
//
// Regular files, directories and symlinks are imported with their mode, owner and times; hard
// links within the tree stay hard links. Sockets, FIFOs and device files are skipped with a
// warning. All-zero pages are not stored (they read back as sparse holes) and stored pages lose
// their trailing zeros.
//
// The import takes the timeline's writer generation (fencing any other writer) and writes in
// many commits; the superblock goes into the last one, so an interrupted import leaves a timeline
// without a filesystem (and not empty: import refuses it; delete and recreate the timeline).
namespace pgbranch::pagectl {

struct ImportStats {
  uint64_t files = 0;
  uint64_t directories = 0;
  uint64_t symlinks = 0;
  uint64_t hard_links = 0;  // extra names of already imported files
  uint64_t skipped = 0;
  uint64_t bytes = 0;  // file data read
  uint64_t pages_stored = 0;
  uint64_t commits = 0;
  uint64_t lsn = 0;  // the LSN of the last commit: the imported tree
};

class TreeImporter {
 public:
  TreeImporter(const Client* client, std::string tenant_id, std::string timeline_id,
               Progress* progress);

  absl::StatusOr<ImportStats> Import(const std::string& dir);

 private:
  struct PendingHardLink {
    uint64_t ino = 0;
    fs::InodeAttr attr;
  };

  absl::Status CheckTimelineEmpty() const;
  absl::StatusOr<uint64_t> AcquireWriter() const;
  // Imports the children of `path` (inode `ino`), then the directory's own attributes.
  absl::Status ImportDirectory(const std::string& path, uint64_t ino, const struct stat& st);
  // Imports `name` in directory `dir_path`; counts a subdirectory into `subdirs`.
  absl::Status ImportEntry(const std::string& dir_path, const std::string& name, uint64_t parent,
                           uint32_t* subdirs);
  absl::Status ImportRegular(const std::string& path, const std::string& name, uint64_t parent,
                             const struct stat& st);
  absl::Status ImportSymlink(const std::string& path, const std::string& name, uint64_t parent,
                             const struct stat& st);
  // Writes the file's non-zero pages; returns the number of bytes read.
  absl::StatusOr<uint64_t> ImportFileData(const std::string& path, uint64_t ino);
  absl::Status PutDirEntry(uint64_t parent, const std::string& name, uint64_t ino,
                           fs::FileType type);
  absl::Status PutAttr(uint64_t ino, const fs::InodeAttr& attr);

  const Client* client_;
  std::string tenant_id_;
  std::string timeline_id_;
  Progress* progress_;
  std::unique_ptr<CommitBatcher> batcher_;
  uint64_t next_ino_ = fs::kRootIno + 1;
  // Files with more than one link, by source (device, inode); their attributes are written at the
  // end, once every link in the tree has been counted.
  std::map<std::pair<dev_t, ino_t>, PendingHardLink> hard_links_;
  ImportStats stats_;
};

// The attributes of a stat result (size and nlink are left for the caller to fill in).
fs::InodeAttr AttrFromStat(const struct stat& st);

}  // namespace pgbranch::pagectl
