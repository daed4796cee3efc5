#include "pageserver/pagectl/tree_importer.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "pageserver/pagectl/posix_util.h"

namespace pgbranch::pagectl {
namespace {

// Files are read in chunks of this many bytes (a multiple of the page size).
constexpr size_t kReadChunk = 128 * fs::kPageSize;

int64_t Nanos(const struct timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

absl::StatusOr<std::vector<std::string>> ListDirectory(const std::string& path) {
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) return PosixError("open directory", path);
  absl::Cleanup close_dir = [dir] { closedir(dir); };
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* entry = readdir(dir)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
    errno = 0;
  }
  if (errno != 0) return PosixError("read directory", path);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

fs::InodeAttr AttrFromStat(const struct stat& st) {
  fs::InodeAttr attr;
  attr.mode = st.st_mode;
  attr.uid = st.st_uid;
  attr.gid = st.st_gid;
  attr.rdev = st.st_rdev;
  attr.atime_ns = Nanos(st.st_atim);
  attr.mtime_ns = Nanos(st.st_mtim);
  attr.ctime_ns = Nanos(st.st_ctim);
  return attr;
}

TreeImporter::TreeImporter(const Client* client, std::string tenant_id, std::string timeline_id,
                           Progress* progress)
    : client_(client),
      tenant_id_(std::move(tenant_id)),
      timeline_id_(std::move(timeline_id)),
      progress_(progress) {}

absl::StatusOr<ImportStats> TreeImporter::Import(const std::string& dir) {
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) return PosixError("stat", dir);
  if (!S_ISDIR(st.st_mode))
    return absl::InvalidArgumentError(absl::StrCat(dir, " is no directory"));
  PGB_RETURN_IF_ERROR(CheckTimelineEmpty());
  PGB_ASSIGN_OR_RETURN(uint64_t generation, AcquireWriter());
  batcher_ = std::make_unique<CommitBatcher>(client_, tenant_id_, timeline_id_, generation);

  PGB_RETURN_IF_ERROR(ImportDirectory(dir, fs::kRootIno, st));
  for (const auto& [source, link] : hard_links_) {
    PGB_RETURN_IF_ERROR(PutAttr(link.ino, link.attr));
  }
  // The commit point: a timeline holds a filesystem once its superblock exists.
  fs::Superblock sb;
  sb.next_ino = next_ino_;
  PGB_RETURN_IF_ERROR(batcher_->Put(fs::SuperblockKey(), fs::EncodeSuperblock(sb)));
  PGB_RETURN_IF_ERROR(batcher_->Flush());
  progress_->Finish();
  stats_.commits = batcher_->commits();
  stats_.lsn = batcher_->last_lsn();
  return stats_;
}

absl::Status TreeImporter::CheckTimelineEmpty() const {
  v1::ReadRequest read;
  read.set_tenant_id(tenant_id_);
  read.set_timeline_id(timeline_id_);
  read.add_keys(fs::SuperblockKey());
  v1::ReadResponse superblock;
  PGB_RETURN_IF_ERROR(client_->Call(&v1::PageService::StubInterface::Read, read, &superblock));
  const char* what = nullptr;
  if (superblock.values_size() > 0 && superblock.values(0).found()) {
    what = "a filesystem";
  } else {
    v1::ScanRequest scan;
    scan.set_tenant_id(tenant_id_);
    scan.set_timeline_id(timeline_id_);
    scan.set_limit(1);
    v1::ScanResponse any;
    PGB_RETURN_IF_ERROR(client_->Call(&v1::PageService::StubInterface::Scan, scan, &any));
    if (any.entries_size() == 0) return absl::OkStatus();
    what = "data but no filesystem (an interrupted import?)";
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "timeline ", timeline_id_, " already holds ", what, " at LSN ", superblock.lsn(),
      "; import writes only into an empty timeline (create one with `pagectl timeline create`)"));
}

absl::StatusOr<uint64_t> TreeImporter::AcquireWriter() const {
  v1::AcquireWriterRequest request;
  request.set_tenant_id(tenant_id_);
  request.set_timeline_id(timeline_id_);
  v1::AcquireWriterResponse response;
  PGB_RETURN_IF_ERROR(
      client_->Call(&v1::PageService::StubInterface::AcquireWriter, request, &response));
  return response.generation();
}

absl::Status TreeImporter::ImportDirectory(const std::string& path, uint64_t ino,
                                           const struct stat& st) {
  PGB_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirectory(path));
  uint32_t subdirs = 0;
  for (const std::string& name : names) {
    PGB_RETURN_IF_ERROR(ImportEntry(path, name, ino, &subdirs));
  }
  fs::InodeAttr attr = AttrFromStat(st);
  attr.nlink = 2 + subdirs;
  attr.size = 0;
  ++stats_.directories;
  progress_->AddFile();
  return PutAttr(ino, attr);
}

absl::Status TreeImporter::ImportEntry(const std::string& dir_path, const std::string& name,
                                       uint64_t parent, uint32_t* subdirs) {
  std::string path = JoinPath(dir_path, name);
  PGB_RETURN_IF_ERROR(fs::ValidateName(name));
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return PosixError("stat", path);
  switch (fs::FileTypeFromMode(st.st_mode)) {
    case fs::FileType::kDirectory: {
      uint64_t ino = next_ino_++;
      PGB_RETURN_IF_ERROR(PutDirEntry(parent, name, ino, fs::FileType::kDirectory));
      ++*subdirs;
      return ImportDirectory(path, ino, st);
    }
    case fs::FileType::kRegular:
      return ImportRegular(path, name, parent, st);
    case fs::FileType::kSymlink:
      return ImportSymlink(path, name, parent, st);
    default:
      std::fprintf(stderr, "warning: skipping %s %s\n",
                   fs::FileTypeName(fs::FileTypeFromMode(st.st_mode)), path.c_str());
      ++stats_.skipped;
      return absl::OkStatus();
  }
}

absl::Status TreeImporter::ImportRegular(const std::string& path, const std::string& name,
                                         uint64_t parent, const struct stat& st) {
  progress_->AddFile();
  std::pair<dev_t, ino_t> source{st.st_dev, st.st_ino};
  if (st.st_nlink > 1) {
    auto it = hard_links_.find(source);
    if (it != hard_links_.end()) {
      ++it->second.attr.nlink;
      ++stats_.hard_links;
      return PutDirEntry(parent, name, it->second.ino, fs::FileType::kRegular);
    }
  }
  uint64_t ino = next_ino_++;
  PGB_RETURN_IF_ERROR(PutDirEntry(parent, name, ino, fs::FileType::kRegular));
  PGB_ASSIGN_OR_RETURN(uint64_t size, ImportFileData(path, ino));
  fs::InodeAttr attr = AttrFromStat(st);
  attr.size = size;
  attr.nlink = 1;
  ++stats_.files;
  if (st.st_nlink > 1) {
    hard_links_[source] = PendingHardLink{ino, attr};
    return absl::OkStatus();
  }
  return PutAttr(ino, attr);
}

absl::Status TreeImporter::ImportSymlink(const std::string& path, const std::string& name,
                                         uint64_t parent, const struct stat& st) {
  progress_->AddFile();
  std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
  while (true) {
    ssize_t n = readlink(path.c_str(), target.data(), target.size());
    if (n < 0) return PosixError("read symlink", path);
    if (static_cast<size_t>(n) < target.size()) {
      target.resize(static_cast<size_t>(n));
      break;
    }
    target.resize(target.size() * 2);  // the link changed since lstat
  }
  uint64_t ino = next_ino_++;
  PGB_RETURN_IF_ERROR(PutDirEntry(parent, name, ino, fs::FileType::kSymlink));
  fs::InodeAttr attr = AttrFromStat(st);
  attr.nlink = 1;
  attr.size = target.size();
  attr.symlink_target = std::move(target);
  ++stats_.symlinks;
  return PutAttr(ino, attr);
}

absl::StatusOr<uint64_t> TreeImporter::ImportFileData(const std::string& path, uint64_t ino) {
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return PosixError("open", path);
  absl::Cleanup close_fd = [fd] { close(fd); };
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  std::vector<char> buf(kReadChunk);
  uint64_t size = 0;
  while (true) {
    PGB_ASSIGN_OR_RETURN(size_t n, ReadFull(fd, buf.data(), buf.size(), path));
    for (size_t off = 0; off < n; off += fs::kPageSize) {
      std::string_view page(buf.data() + off, std::min(fs::kPageSize, n - off));
      std::string_view stored = fs::TrimTrailingZeros(page);
      if (stored.empty()) continue;  // an all-zero page: leave a hole
      PGB_RETURN_IF_ERROR(
          batcher_->Put(fs::PageKey(ino, fs::BlockOf(size + off)), std::string(stored)));
      ++stats_.pages_stored;
    }
    size += n;
    stats_.bytes += n;
    progress_->AddBytes(n);
    if (n < buf.size()) break;
  }
  return size;
}

absl::Status TreeImporter::PutDirEntry(uint64_t parent, const std::string& name, uint64_t ino,
                                       fs::FileType type) {
  return batcher_->Put(fs::DirEntryKey(parent, name), fs::EncodeDirEntry(fs::DirEntry{ino, type}));
}

absl::Status TreeImporter::PutAttr(uint64_t ino, const fs::InodeAttr& attr) {
  return batcher_->Put(fs::InodeKey(ino), fs::EncodeInodeAttr(attr));
}

}  // namespace pgbranch::pagectl
