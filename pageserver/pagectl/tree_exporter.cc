#include "pageserver/pagectl/tree_exporter.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "pageserver/pagectl/posix_util.h"

namespace pgbranch::pagectl {
namespace {

// Pages per Read request (1 MiB of data).
constexpr size_t kPagesPerRead = 128;
// Inode attributes per Read request.
constexpr size_t kAttrsPerRead = 1000;
// Directory entries per Scan request.
constexpr uint32_t kEntriesPerScan = 1000;

struct timespec ToTimespec(int64_t ns) {
  struct timespec ts;
  ts.tv_sec = static_cast<time_t>(ns / 1000000000);
  ts.tv_nsec = static_cast<long>(ns % 1000000000);
  if (ts.tv_nsec < 0) {
    ts.tv_nsec += 1000000000;
    ts.tv_sec -= 1;
  }
  return ts;
}

absl::Status CheckEmptyOrAbsent(const std::string& dir, bool* exists) {
  struct stat st;
  if (lstat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      *exists = false;
      return absl::OkStatus();
    }
    return PosixError("stat", dir);
  }
  *exists = true;
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(dir, " exists and is no directory"));
  }
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return PosixError("open directory", dir);
  absl::Cleanup close_dir = [d] { closedir(d); };
  while (struct dirent* entry = readdir(d)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") {
      return absl::FailedPreconditionError(
          absl::StrCat(dir, " is not empty; export writes only into an empty or new directory"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

TreeExporter::TreeExporter(const Client* client, std::string tenant_id, std::string timeline_id,
                           uint64_t lsn, Progress* progress)
    : client_(client),
      tenant_id_(std::move(tenant_id)),
      timeline_id_(std::move(timeline_id)),
      lsn_(lsn),
      progress_(progress),
      restore_owner_(geteuid() == 0) {}

absl::StatusOr<ExportStats> TreeExporter::Export(const std::string& dir) {
  bool exists = false;
  PGB_RETURN_IF_ERROR(CheckEmptyOrAbsent(dir, &exists));
  PGB_ASSIGN_OR_RETURN(fs::InodeAttr root, ReadRoot());
  if (!exists && mkdir(dir.c_str(), 0700) != 0) return PosixError("create directory", dir);
  PGB_RETURN_IF_ERROR(ExportDirectory(dir, fs::kRootIno, root));
  progress_->Finish();
  stats_.lsn = lsn_;
  return stats_;
}

absl::StatusOr<fs::InodeAttr> TreeExporter::ReadRoot() {
  v1::ReadRequest request;
  request.set_tenant_id(tenant_id_);
  request.set_timeline_id(timeline_id_);
  request.set_lsn(lsn_);
  request.add_keys(fs::SuperblockKey());
  request.add_keys(fs::InodeKey(fs::kRootIno));
  v1::ReadResponse response;
  PGB_RETURN_IF_ERROR(client_->Call(&v1::PageService::StubInterface::Read, request, &response));
  if (response.values_size() != 2) {
    return absl::InternalError("the pageserver answered a Read with the wrong number of values");
  }
  lsn_ = response.lsn();
  if (!response.values(0).found()) {
    return absl::FailedPreconditionError(
        absl::StrCat("timeline ", timeline_id_, " holds no filesystem at LSN ", lsn_,
                     " (no superblock: nothing was imported, or the import did not finish)"));
  }
  PGB_RETURN_IF_ERROR(fs::DecodeSuperblock(response.values(0).data()).status());
  if (!response.values(1).found()) {
    return absl::DataLossError("the filesystem has a superblock but no root directory");
  }
  PGB_ASSIGN_OR_RETURN(fs::InodeAttr root, fs::DecodeInodeAttr(response.values(1).data()));
  if (!root.IsDirectory()) return absl::DataLossError("the root inode is not a directory");
  return root;
}

absl::StatusOr<std::vector<std::optional<std::string>>> TreeExporter::ReadKeys(
    const std::vector<std::string>& keys) const {
  v1::ReadRequest request;
  request.set_tenant_id(tenant_id_);
  request.set_timeline_id(timeline_id_);
  request.set_lsn(lsn_);
  for (const std::string& key : keys) request.add_keys(key);
  v1::ReadResponse response;
  PGB_RETURN_IF_ERROR(client_->Call(&v1::PageService::StubInterface::Read, request, &response));
  if (response.values_size() != static_cast<int>(keys.size())) {
    return absl::InternalError("the pageserver answered a Read with the wrong number of values");
  }
  std::vector<std::optional<std::string>> values;
  values.reserve(keys.size());
  for (v1::Value& value : *response.mutable_values()) {
    if (value.found()) {
      values.emplace_back(std::move(*value.mutable_data()));
    } else {
      values.emplace_back(std::nullopt);
    }
  }
  return values;
}

absl::StatusOr<TreeExporter::Entries> TreeExporter::ListDirectory(uint64_t ino) const {
  Entries entries;
  fs::KeyRange range = fs::DirEntryRange(ino);
  v1::ScanRequest request;
  request.set_tenant_id(tenant_id_);
  request.set_timeline_id(timeline_id_);
  request.set_lsn(lsn_);
  request.set_end(range.end);
  request.set_limit(kEntriesPerScan);
  std::string start = range.start;
  while (true) {
    request.set_start(start);
    v1::ScanResponse response;
    PGB_RETURN_IF_ERROR(client_->Call(&v1::PageService::StubInterface::Scan, request, &response));
    for (const v1::KeyValue& kv : response.entries()) {
      PGB_ASSIGN_OR_RETURN(fs::DirEntryKeyParts parts, fs::ParseDirEntryKey(kv.key()));
      PGB_ASSIGN_OR_RETURN(fs::DirEntry entry, fs::DecodeDirEntry(kv.value()));
      std::string name(parts.name);
      if (absl::Status valid = fs::ValidateName(name); !valid.ok()) {
        return absl::DataLossError(
            absl::StrCat("directory inode ", ino, " holds a bad name: ", valid.message()));
      }
      entries.emplace_back(std::move(name), entry);
    }
    if (!response.more() || response.entries_size() == 0) break;
    start = response.entries(response.entries_size() - 1).key();
    start.push_back('\0');
  }
  return entries;
}

absl::StatusOr<std::vector<fs::InodeAttr>> TreeExporter::ReadAttrs(const Entries& entries) const {
  std::vector<fs::InodeAttr> attrs;
  attrs.reserve(entries.size());
  for (size_t begin = 0; begin < entries.size(); begin += kAttrsPerRead) {
    size_t end = std::min(entries.size(), begin + kAttrsPerRead);
    std::vector<std::string> keys;
    for (size_t i = begin; i < end; ++i) keys.push_back(fs::InodeKey(entries[i].second.ino));
    PGB_ASSIGN_OR_RETURN(auto values, ReadKeys(keys));
    for (size_t i = begin; i < end; ++i) {
      const std::optional<std::string>& value = values[i - begin];
      if (!value.has_value()) {
        return absl::DataLossError(absl::StrCat("entry \"", entries[i].first, "\" points to inode ",
                                                entries[i].second.ino, ", which does not exist"));
      }
      PGB_ASSIGN_OR_RETURN(fs::InodeAttr attr, fs::DecodeInodeAttr(*value));
      attrs.push_back(std::move(attr));
    }
  }
  return attrs;
}

absl::Status TreeExporter::ExportDirectory(const std::string& path, uint64_t ino,
                                           const fs::InodeAttr& attr) {
  if (!visited_dirs_.insert(ino).second) {
    return absl::DataLossError(absl::StrCat("directory inode ", ino, " appears twice in the tree"));
  }
  PGB_ASSIGN_OR_RETURN(Entries entries, ListDirectory(ino));
  PGB_ASSIGN_OR_RETURN(std::vector<fs::InodeAttr> attrs, ReadAttrs(entries));
  for (size_t i = 0; i < entries.size(); ++i) {
    PGB_RETURN_IF_ERROR(
        ExportEntry(JoinPath(path, entries[i].first), entries[i].second.ino, attrs[i]));
  }
  ++stats_.directories;
  progress_->AddFile();
  // Last, so that a read-only mode does not stop the children from being written.
  return ApplyAttributes(path, attr);
}

absl::Status TreeExporter::ExportEntry(const std::string& path, uint64_t ino,
                                       const fs::InodeAttr& attr) {
  switch (attr.type()) {
    case fs::FileType::kDirectory:
      if (mkdir(path.c_str(), 0700) != 0) return PosixError("create directory", path);
      return ExportDirectory(path, ino, attr);
    case fs::FileType::kRegular:
      progress_->AddFile();
      if (auto it = linked_files_.find(ino); it != linked_files_.end()) {
        if (link(it->second.c_str(), path.c_str()) != 0) return PosixError("link", path);
        ++stats_.hard_links;
        return absl::OkStatus();
      }
      if (attr.nlink > 1) linked_files_[ino] = path;
      return ExportRegular(path, ino, attr);
    case fs::FileType::kSymlink:
      progress_->AddFile();
      if (symlink(attr.symlink_target.c_str(), path.c_str()) != 0) {
        return PosixError("create symlink", path);
      }
      ++stats_.symlinks;
      return ApplyAttributes(path, attr);
    case fs::FileType::kFifo:
      progress_->AddFile();
      if (mkfifo(path.c_str(), 0600) != 0) return PosixError("create fifo", path);
      ++stats_.files;
      return ApplyAttributes(path, attr);
    default:
      std::fprintf(stderr, "warning: skipping %s %s\n", fs::FileTypeName(attr.type()),
                   path.c_str());
      ++stats_.skipped;
      return absl::OkStatus();
  }
}

absl::Status TreeExporter::ExportRegular(const std::string& path, uint64_t ino,
                                         const fs::InodeAttr& attr) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return PosixError("create", path);
  absl::Status status = ExportFileData(fd, path, ino, attr.size);
  if (close(fd) != 0 && status.ok()) status = PosixError("close", path);
  PGB_RETURN_IF_ERROR(status);
  ++stats_.files;
  return ApplyAttributes(path, attr);
}

absl::Status TreeExporter::ExportFileData(int fd, const std::string& path, uint64_t ino,
                                          uint64_t size) {
  uint64_t pages = fs::PageCount(size);
  for (uint64_t first = 0; first < pages; first += kPagesPerRead) {
    uint64_t end = std::min<uint64_t>(pages, first + kPagesPerRead);
    std::vector<std::string> keys;
    for (uint64_t block = first; block < end; ++block) keys.push_back(fs::PageKey(ino, block));
    PGB_ASSIGN_OR_RETURN(auto values, ReadKeys(keys));
    for (uint64_t block = first; block < end; ++block) {
      const std::optional<std::string>& value = values[block - first];
      if (!value.has_value()) continue;  // a hole
      PGB_RETURN_IF_ERROR(fs::ValidatePageValue(*value));
      size_t n = std::min(value->size(), fs::BytesInBlock(size, block));
      PGB_RETURN_IF_ERROR(
          PwriteFull(fd, value->data(), n, static_cast<off_t>(block * fs::kPageSize), path));
    }
    uint64_t bytes = std::min<uint64_t>(size, end * fs::kPageSize) - first * fs::kPageSize;
    stats_.bytes += bytes;
    progress_->AddBytes(bytes);
  }
  // Extends the file over trailing holes and short last pages.
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) return PosixError("truncate", path);
  return absl::OkStatus();
}

absl::Status TreeExporter::ApplyAttributes(const std::string& path,
                                           const fs::InodeAttr& attr) const {
  if (restore_owner_ && lchown(path.c_str(), attr.uid, attr.gid) != 0) {
    return PosixError("change owner of", path);
  }
  // After chown, which clears the set-user-ID and set-group-ID bits.
  if (!attr.IsSymlink() && chmod(path.c_str(), attr.mode & 07777) != 0) {
    return PosixError("change mode of", path);
  }
  struct timespec times[2] = {ToTimespec(attr.atime_ns), ToTimespec(attr.mtime_ns)};
  if (utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
    return PosixError("set times of", path);
  }
  return absl::OkStatus();
}

}  // namespace pgbranch::pagectl
