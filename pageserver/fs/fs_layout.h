#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// The key/value layout by which a POSIX directory tree is stored in a pageserver timeline.
// pagectl's import/export and the pagefs FUSE filesystem both read and write exactly this layout,
// so it is a persistent format: change it only by bumping kFormatVersion.
//
// Keys are byte strings ordered lexicographically. Every number inside a key is a big-endian u64,
// so byte order equals numeric order and a prefix scan lists an object's children in order:
//
//   "S"                                  -> Superblock   (format version, next free inode)
//   'I' ino                              -> InodeAttr    (mode, owner, size, times, symlink target)
//   'D' parent_ino name                  -> DirEntry     (child ino BE64 + FileType byte)
//   'P' ino block                        -> page data    (0..kPageSize bytes)
//   'O' ino                              -> ""           (orphan record, see below)
//
// File data is kept in pages of kPageSize bytes (PostgreSQL's BLCKSZ). Block b of a file holds
// bytes [b * kPageSize, (b + 1) * kPageSize). A stored page may be shorter than kPageSize: its
// missing tail reads as zeros. A page that is absent but lies within the file's size reads as
// zeros too (a sparse hole). Pages at or beyond the size are garbage and must be ignored (a
// truncate may delete them lazily).
//
// Orphans: an inode whose last directory entry is gone (nlink 0) carries an orphan record, written
// in the same commit that removed its last link. From then on nothing in the tree reaches the
// inode or its pages; a writer deletes its pages in bounded batches and, last, the inode and the
// record in one commit. A crash (or a branch taken) in between leaves an unreachable inode with
// its record, which the next read-write mount collects. Inode numbers are never reused (the
// superblock's next_ino only grows), so leftover pages can never appear in a new file.
//
// File sizes go up to kMaxFileSize. Block numbers are BE64 in page keys, so the layout itself
// addresses 2^64 pages (2^77 bytes); the binding limit is off_t, in which the kernel and every
// caller express offsets and sizes. A larger size answers EFBIG.
//
// The root directory is inode kRootIno. A timeline holds a valid tree exactly when the superblock
// exists; writers of a whole tree (import) write the superblock in their last commit.
//
// Values use little-endian fixed-width integers (common/coding.h) and start with a version byte
// where the structure may grow. Decoders never trust their input: malformed values yield a
// DATA_LOSS status, never a crash.
namespace pgbranch::fs {

inline constexpr uint32_t kFormatVersion = 1;
inline constexpr uint64_t kRootIno = 1;
inline constexpr size_t kPageSize = 8192;
// The longest name a directory entry may have (NAME_MAX on Linux).
inline constexpr size_t kMaxNameBytes = 255;

// The first byte of every key names its kind.
inline constexpr char kSuperblockTag = 'S';
inline constexpr char kInodeTag = 'I';
inline constexpr char kDirEntryTag = 'D';
inline constexpr char kPageTag = 'P';
inline constexpr char kOrphanTag = 'O';

// The largest file size: what off_t can express (Linux's MAX_LFS_FILESIZE, also the kernel's limit
// for a FUSE mount). Every block number below it fits the key layout with room to spare.
inline constexpr uint64_t kMaxFileSize = 0x7fffffffffffffffull;

// A half-open key range [start, end) as used by the Scan RPC. An empty `end` is unbounded.
struct KeyRange {
  std::string start;
  std::string end;
};

// The smallest key greater than every key that starts with `prefix`; empty if there is none
// (the prefix is all 0xff bytes), which Scan reads as "unbounded".
std::string PrefixSuccessor(std::string_view prefix);
// The range of all keys that start with `prefix`.
KeyRange PrefixRange(std::string_view prefix);

// ---------------------------------------------------------------------------------------------
// Superblock

struct Superblock {
  uint32_t format_version = kFormatVersion;
  // The next inode number a writer may allocate; every inode in use is below it.
  uint64_t next_ino = kRootIno + 1;

  bool operator==(const Superblock&) const = default;
};

std::string SuperblockKey();
std::string EncodeSuperblock(const Superblock& sb);
// Fails on malformed input and on a format version this code does not understand.
absl::StatusOr<Superblock> DecodeSuperblock(std::string_view value);

// ---------------------------------------------------------------------------------------------
// File types

// A directory entry's file type, as stored in the DirEntry value. The numbering is part of the
// format; it deliberately differs from both S_IFMT and DT_* so that neither leaks into storage.
enum class FileType : uint8_t {
  kUnknown = 0,
  kRegular = 1,
  kDirectory = 2,
  kSymlink = 3,
  kFifo = 4,
  kCharDevice = 5,
  kBlockDevice = 6,
  kSocket = 7,
};

// The type encoded in the S_IFMT bits of `mode`; kUnknown if none matches.
FileType FileTypeFromMode(uint32_t mode);
// The S_IFMT bits for `type` (0 for kUnknown).
uint32_t ModeTypeBits(FileType type);
// The DT_* constant for readdir (DT_UNKNOWN for kUnknown).
uint8_t DirentType(FileType type);
const char* FileTypeName(FileType type);

// ---------------------------------------------------------------------------------------------
// Inodes

struct InodeAttr {
  uint32_t mode = 0;  // permission bits and the S_IFMT file type bits
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t nlink = 0;
  uint64_t size = 0;     // bytes; for a symlink, the length of its target
  uint64_t rdev = 0;     // device number for device files
  int64_t atime_ns = 0;  // nanoseconds since the Unix epoch
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  std::string symlink_target;  // only for symlinks

  FileType type() const { return FileTypeFromMode(mode); }
  bool IsDirectory() const { return type() == FileType::kDirectory; }
  bool IsRegular() const { return type() == FileType::kRegular; }
  bool IsSymlink() const { return type() == FileType::kSymlink; }

  bool operator==(const InodeAttr&) const = default;
};

std::string InodeKey(uint64_t ino);
// The inode number of an inode key; fails if `key` is not one.
absl::StatusOr<uint64_t> ParseInodeKey(std::string_view key);
// The range of all inode keys.
KeyRange AllInodesRange();

std::string EncodeInodeAttr(const InodeAttr& attr);
// Fails on malformed input, an unknown version, or a symlink target on a non-symlink.
absl::StatusOr<InodeAttr> DecodeInodeAttr(std::string_view value);

// ---------------------------------------------------------------------------------------------
// Directory entries

struct DirEntry {
  uint64_t ino = 0;
  FileType type = FileType::kUnknown;

  bool operator==(const DirEntry&) const = default;
};

// A directory entry key parsed back into its parts. `name` points into the parsed key.
struct DirEntryKeyParts {
  uint64_t parent_ino = 0;
  std::string_view name;
};

// OK if `name` may be stored as a directory entry: 1..kMaxNameBytes bytes, no '/' or NUL,
// neither "." nor "..". (Those two are synthesised by readers, never stored.)
absl::Status ValidateName(std::string_view name);

// The key of entry `name` in directory `parent`. The name is not validated here.
std::string DirEntryKey(uint64_t parent, std::string_view name);
// Fails if `key` is not a directory entry key or its name is empty.
absl::StatusOr<DirEntryKeyParts> ParseDirEntryKey(std::string_view key);
// 'D' + parent: every entry of `parent` starts with it.
std::string DirEntryPrefix(uint64_t parent);
// All entries of `parent`, in name (byte) order.
KeyRange DirEntryRange(uint64_t parent);
// The entries of `parent` after `name` (exclusive): resumes a paged listing.
KeyRange DirEntryRangeAfter(uint64_t parent, std::string_view name);

std::string EncodeDirEntry(const DirEntry& entry);
absl::StatusOr<DirEntry> DecodeDirEntry(std::string_view value);

// ---------------------------------------------------------------------------------------------
// File pages

struct PageKeyParts {
  uint64_t ino = 0;
  uint64_t block = 0;
};

std::string PageKey(uint64_t ino, uint64_t block);
absl::StatusOr<PageKeyParts> ParsePageKey(std::string_view key);
// All pages of `ino`.
KeyRange PageRange(uint64_t ino);
// Pages [first_block, end_block) of `ino`.
KeyRange PageRange(uint64_t ino, uint64_t first_block, uint64_t end_block);

// The pages of `ino` from `first_block` on, to the end of its key range.
KeyRange PageRangeFrom(uint64_t ino, uint64_t first_block);

// The number of pages that hold a file of `size` bytes (the last may be partial).
uint64_t PageCount(uint64_t size);
// The block that holds byte `offset`.
inline uint64_t BlockOf(uint64_t offset) { return offset / kPageSize; }
// The bytes of block `block` that lie within a file of `size` bytes (0..kPageSize).
size_t BytesInBlock(uint64_t size, uint64_t block);

// ---------------------------------------------------------------------------------------------
// Orphan records

std::string OrphanKey(uint64_t ino);
// The inode number of an orphan record key; fails if `key` is not one.
absl::StatusOr<uint64_t> ParseOrphanKey(std::string_view key);
// The range of all orphan records.
KeyRange AllOrphansRange();

// ---------------------------------------------------------------------------------------------
// Page values

// True if every byte of `data` is zero (such a page need not be stored).
bool IsAllZero(std::string_view data);
// `page` without its trailing zero bytes: what needs storing for it.
std::string_view TrimTrailingZeros(std::string_view page);
// Fails if a stored page value is longer than kPageSize.
absl::Status ValidatePageValue(std::string_view value);
// Copies a stored page into `dst` (kPageSize bytes), zero-filling its missing tail. A null
// `stored` (absent page) yields a page of zeros. Values longer than kPageSize are truncated;
// check them with ValidatePageValue first.
void ExpandPage(const std::string* stored, char* dst);

}  // namespace pgbranch::fs
