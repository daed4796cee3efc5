#include "pageserver/fs/fs_layout.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/coding.h"

namespace pgbranch::fs {
namespace {

// Value format versions. Each structure that may grow carries its own.
constexpr uint8_t kInodeAttrVersion = 1;

// Superblock: u32 format version + u64 next_ino.
constexpr size_t kSuperblockBytes = 4 + 8;
// DirEntry: BE64 ino + type byte.
constexpr size_t kDirEntryBytes = 8 + 1;
// Tag + BE64.
constexpr size_t kInodeKeyBytes = 1 + 8;
// Tag + BE64 ino + BE64 block.
constexpr size_t kPageKeyBytes = 1 + 8 + 8;

std::string TaggedKey(char tag, uint64_t a) {
  std::string key(1, tag);
  PutBigEndian64(&key, a);
  return key;
}

absl::Status Corrupt(const char* what, std::string_view detail) {
  return absl::DataLossError(absl::StrCat("malformed ", what, ": ", std::string(detail)));
}

bool GetInt64(std::string_view* in, int64_t* v) {
  uint64_t u;
  if (!GetFixed64(in, &u)) return false;
  *v = static_cast<int64_t>(u);
  return true;
}

}  // namespace

std::string PrefixSuccessor(std::string_view prefix) {
  std::string s(prefix);
  while (!s.empty()) {
    unsigned char last = static_cast<unsigned char>(s.back());
    if (last != 0xff) {
      s.back() = static_cast<char>(last + 1);
      return s;
    }
    s.pop_back();
  }
  return s;
}

KeyRange PrefixRange(std::string_view prefix) {
  return KeyRange{std::string(prefix), PrefixSuccessor(prefix)};
}

// ---------------------------------------------------------------------------------------------
// Superblock

std::string SuperblockKey() { return std::string(1, kSuperblockTag); }

std::string EncodeSuperblock(const Superblock& sb) {
  std::string out;
  PutFixed32(&out, sb.format_version);
  PutFixed64(&out, sb.next_ino);
  return out;
}

absl::StatusOr<Superblock> DecodeSuperblock(std::string_view value) {
  if (value.size() != kSuperblockBytes) {
    return Corrupt("superblock", absl::StrCat(value.size(), " bytes, want ", kSuperblockBytes));
  }
  Superblock sb;
  GetFixed32(&value, &sb.format_version);
  GetFixed64(&value, &sb.next_ino);
  if (sb.format_version != kFormatVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("filesystem format version ", sb.format_version,
                     " is not supported (this build reads version ", kFormatVersion, ")"));
  }
  if (sb.next_ino <= kRootIno) {
    return Corrupt("superblock", absl::StrCat("next inode ", sb.next_ino));
  }
  return sb;
}

// ---------------------------------------------------------------------------------------------
// File types

FileType FileTypeFromMode(uint32_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return FileType::kRegular;
    case S_IFDIR:
      return FileType::kDirectory;
    case S_IFLNK:
      return FileType::kSymlink;
    case S_IFIFO:
      return FileType::kFifo;
    case S_IFCHR:
      return FileType::kCharDevice;
    case S_IFBLK:
      return FileType::kBlockDevice;
    case S_IFSOCK:
      return FileType::kSocket;
    default:
      return FileType::kUnknown;
  }
}

uint32_t ModeTypeBits(FileType type) {
  switch (type) {
    case FileType::kRegular:
      return S_IFREG;
    case FileType::kDirectory:
      return S_IFDIR;
    case FileType::kSymlink:
      return S_IFLNK;
    case FileType::kFifo:
      return S_IFIFO;
    case FileType::kCharDevice:
      return S_IFCHR;
    case FileType::kBlockDevice:
      return S_IFBLK;
    case FileType::kSocket:
      return S_IFSOCK;
    case FileType::kUnknown:
      break;
  }
  return 0;
}

uint8_t DirentType(FileType type) {
  switch (type) {
    case FileType::kRegular:
      return DT_REG;
    case FileType::kDirectory:
      return DT_DIR;
    case FileType::kSymlink:
      return DT_LNK;
    case FileType::kFifo:
      return DT_FIFO;
    case FileType::kCharDevice:
      return DT_CHR;
    case FileType::kBlockDevice:
      return DT_BLK;
    case FileType::kSocket:
      return DT_SOCK;
    case FileType::kUnknown:
      break;
  }
  return DT_UNKNOWN;
}

const char* FileTypeName(FileType type) {
  switch (type) {
    case FileType::kRegular:
      return "file";
    case FileType::kDirectory:
      return "directory";
    case FileType::kSymlink:
      return "symlink";
    case FileType::kFifo:
      return "fifo";
    case FileType::kCharDevice:
      return "character device";
    case FileType::kBlockDevice:
      return "block device";
    case FileType::kSocket:
      return "socket";
    case FileType::kUnknown:
      break;
  }
  return "unknown";
}

// ---------------------------------------------------------------------------------------------
// Inodes

std::string InodeKey(uint64_t ino) { return TaggedKey(kInodeTag, ino); }

absl::StatusOr<uint64_t> ParseInodeKey(std::string_view key) {
  if (key.size() != kInodeKeyBytes || key[0] != kInodeTag) {
    return absl::InvalidArgumentError("not an inode key");
  }
  return DecodeBigEndian64(key.data() + 1);
}

KeyRange AllInodesRange() { return PrefixRange(std::string(1, kInodeTag)); }

// Version 1: version byte, u32 mode, uid, gid, nlink, u64 size, rdev, i64 atime, mtime, ctime
// (ns), length-prefixed symlink target.
std::string EncodeInodeAttr(const InodeAttr& attr) {
  std::string out;
  out.reserve(1 + 4 * 4 + 8 * 5 + 1 + attr.symlink_target.size());
  out.push_back(static_cast<char>(kInodeAttrVersion));
  PutFixed32(&out, attr.mode);
  PutFixed32(&out, attr.uid);
  PutFixed32(&out, attr.gid);
  PutFixed32(&out, attr.nlink);
  PutFixed64(&out, attr.size);
  PutFixed64(&out, attr.rdev);
  PutFixed64(&out, static_cast<uint64_t>(attr.atime_ns));
  PutFixed64(&out, static_cast<uint64_t>(attr.mtime_ns));
  PutFixed64(&out, static_cast<uint64_t>(attr.ctime_ns));
  PutLengthPrefixed(&out, attr.symlink_target);
  return out;
}

absl::StatusOr<InodeAttr> DecodeInodeAttr(std::string_view value) {
  if (value.empty()) return Corrupt("inode", "empty value");
  uint8_t version = static_cast<uint8_t>(value[0]);
  if (version != kInodeAttrVersion) {
    return Corrupt("inode", absl::StrCat("unknown version ", version));
  }
  value.remove_prefix(1);
  InodeAttr attr;
  std::string_view target;
  bool ok = GetFixed32(&value, &attr.mode) && GetFixed32(&value, &attr.uid) &&
            GetFixed32(&value, &attr.gid) && GetFixed32(&value, &attr.nlink) &&
            GetFixed64(&value, &attr.size) && GetFixed64(&value, &attr.rdev) &&
            GetInt64(&value, &attr.atime_ns) && GetInt64(&value, &attr.mtime_ns) &&
            GetInt64(&value, &attr.ctime_ns) && GetLengthPrefixed(&value, &target);
  if (!ok) return Corrupt("inode", "truncated value");
  if (!value.empty()) {
    return Corrupt("inode", absl::StrCat(value.size(), " trailing bytes"));
  }
  if (!target.empty() && !attr.IsSymlink()) {
    return Corrupt("inode", "a symlink target on an inode that is not a symlink");
  }
  attr.symlink_target = std::string(target);
  return attr;
}

// ---------------------------------------------------------------------------------------------
// Directory entries

absl::Status ValidateName(std::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("empty file name");
  if (name.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("file name of ", name.size(), " bytes exceeds ", kMaxNameBytes, " bytes"));
  }
  if (name == "." || name == "..") {
    return absl::InvalidArgumentError(
        absl::StrCat("reserved file name \"", std::string(name), "\""));
  }
  if (name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError("file name contains '/' or NUL");
  }
  return absl::OkStatus();
}

std::string DirEntryPrefix(uint64_t parent) { return TaggedKey(kDirEntryTag, parent); }

std::string DirEntryKey(uint64_t parent, std::string_view name) {
  std::string key = DirEntryPrefix(parent);
  key.append(name.data(), name.size());
  return key;
}

absl::StatusOr<DirEntryKeyParts> ParseDirEntryKey(std::string_view key) {
  if (key.size() <= kInodeKeyBytes || key[0] != kDirEntryTag) {
    return absl::InvalidArgumentError("not a directory entry key");
  }
  DirEntryKeyParts parts;
  parts.parent_ino = DecodeBigEndian64(key.data() + 1);
  parts.name = key.substr(kInodeKeyBytes);
  return parts;
}

KeyRange DirEntryRange(uint64_t parent) { return PrefixRange(DirEntryPrefix(parent)); }

KeyRange DirEntryRangeAfter(uint64_t parent, std::string_view name) {
  KeyRange range = DirEntryRange(parent);
  // The smallest key after DirEntryKey(parent, name) is that key followed by a zero byte.
  range.start = DirEntryKey(parent, name);
  range.start.push_back('\0');
  return range;
}

std::string EncodeDirEntry(const DirEntry& entry) {
  std::string out;
  PutBigEndian64(&out, entry.ino);
  out.push_back(static_cast<char>(entry.type));
  return out;
}

absl::StatusOr<DirEntry> DecodeDirEntry(std::string_view value) {
  if (value.size() != kDirEntryBytes) {
    return Corrupt("directory entry", absl::StrCat(value.size(), " bytes, want ", kDirEntryBytes));
  }
  DirEntry entry;
  entry.ino = DecodeBigEndian64(value.data());
  uint8_t type = static_cast<uint8_t>(value[8]);
  if (type > static_cast<uint8_t>(FileType::kSocket)) {
    return Corrupt("directory entry", absl::StrCat("unknown file type ", type));
  }
  entry.type = static_cast<FileType>(type);
  if (entry.ino == 0) return Corrupt("directory entry", "inode 0");
  return entry;
}

// ---------------------------------------------------------------------------------------------
// File pages

std::string PageKey(uint64_t ino, uint64_t block) {
  std::string key = TaggedKey(kPageTag, ino);
  PutBigEndian64(&key, block);
  return key;
}

absl::StatusOr<PageKeyParts> ParsePageKey(std::string_view key) {
  if (key.size() != kPageKeyBytes || key[0] != kPageTag) {
    return absl::InvalidArgumentError("not a page key");
  }
  return PageKeyParts{DecodeBigEndian64(key.data() + 1), DecodeBigEndian64(key.data() + 9)};
}

KeyRange PageRange(uint64_t ino) { return PrefixRange(TaggedKey(kPageTag, ino)); }

KeyRange PageRange(uint64_t ino, uint64_t first_block, uint64_t end_block) {
  return KeyRange{PageKey(ino, first_block), PageKey(ino, end_block)};
}

KeyRange PageRangeFrom(uint64_t ino, uint64_t first_block) {
  return KeyRange{PageKey(ino, first_block), PageRange(ino).end};
}

uint64_t PageCount(uint64_t size) { return size / kPageSize + (size % kPageSize != 0 ? 1 : 0); }

size_t BytesInBlock(uint64_t size, uint64_t block) {
  if (block >= PageCount(size)) return 0;
  return static_cast<size_t>(std::min<uint64_t>(kPageSize, size - block * kPageSize));
}

// ---------------------------------------------------------------------------------------------
// Orphan records

std::string OrphanKey(uint64_t ino) { return TaggedKey(kOrphanTag, ino); }

absl::StatusOr<uint64_t> ParseOrphanKey(std::string_view key) {
  if (key.size() != kInodeKeyBytes || key[0] != kOrphanTag) {
    return absl::InvalidArgumentError("not an orphan record key");
  }
  return DecodeBigEndian64(key.data() + 1);
}

KeyRange AllOrphansRange() { return PrefixRange(std::string(1, kOrphanTag)); }

// ---------------------------------------------------------------------------------------------
// Page values

bool IsAllZero(std::string_view data) {
  return std::all_of(data.begin(), data.end(), [](char c) { return c == 0; });
}

std::string_view TrimTrailingZeros(std::string_view page) {
  size_t n = page.size();
  // Eight bytes at a time first: every flushed page is scanned, and a zero page (a new WAL
  // segment is 16 MiB of them) is scanned whole.
  while (n >= sizeof(uint64_t)) {
    uint64_t word;
    std::memcpy(&word, page.data() + n - sizeof(word), sizeof(word));
    if (word != 0) break;
    n -= sizeof(word);
  }
  while (n > 0 && page[n - 1] == 0) --n;
  return page.substr(0, n);
}

absl::Status ValidatePageValue(std::string_view value) {
  if (value.size() > kPageSize) {
    return Corrupt("page", absl::StrCat(value.size(), " bytes, at most ", kPageSize));
  }
  return absl::OkStatus();
}

void ExpandPage(const std::string* stored, char* dst) {
  size_t n = stored == nullptr ? 0 : std::min(stored->size(), kPageSize);
  if (n > 0) std::memcpy(dst, stored->data(), n);
  std::memset(dst + n, 0, kPageSize - n);
}

}  // namespace pgbranch::fs
