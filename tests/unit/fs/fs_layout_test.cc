#include "pageserver/fs/fs_layout.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace pgbranch::fs {
namespace {

TEST(FsLayoutTest, SuperblockRoundTrips) {
  Superblock sb{kFormatVersion, 12345678901ull};
  absl::StatusOr<Superblock> decoded = DecodeSuperblock(EncodeSuperblock(sb));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, sb);
  EXPECT_EQ(SuperblockKey(), "S");
}

TEST(FsLayoutTest, SuperblockRejectsMalformedInput) {
  std::string good = EncodeSuperblock(Superblock{});
  EXPECT_FALSE(DecodeSuperblock("").ok());
  EXPECT_FALSE(DecodeSuperblock(good.substr(0, good.size() - 1)).ok());
  EXPECT_FALSE(DecodeSuperblock(good + "x").ok());
  EXPECT_FALSE(DecodeSuperblock(EncodeSuperblock(Superblock{kFormatVersion + 1, 5})).ok());
  EXPECT_FALSE(DecodeSuperblock(EncodeSuperblock(Superblock{kFormatVersion, kRootIno})).ok());
}

InodeAttr SampleSymlink() {
  InodeAttr attr;
  attr.mode = S_IFLNK | 0777;
  attr.uid = 101;
  attr.gid = 104;
  attr.nlink = 1;
  attr.symlink_target = "../target with spaces/ünïcode";
  attr.size = attr.symlink_target.size();
  attr.atime_ns = -1;  // before the epoch
  attr.mtime_ns = 1795000000123456789;
  attr.ctime_ns = 1795000000000000001;
  return attr;
}

TEST(FsLayoutTest, InodeAttrRoundTrips) {
  InodeAttr file;
  file.mode = S_IFREG | 0600;
  file.uid = 0xfffffffe;
  file.gid = 7;
  file.nlink = 3;
  file.size = (1ull << 40) + 17;
  file.rdev = 0;
  file.mtime_ns = 1;
  for (const InodeAttr& attr : {file, SampleSymlink()}) {
    absl::StatusOr<InodeAttr> decoded = DecodeInodeAttr(EncodeInodeAttr(attr));
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, attr);
  }
  EXPECT_TRUE(file.IsRegular());
  EXPECT_TRUE(SampleSymlink().IsSymlink());
}

TEST(FsLayoutTest, InodeAttrRejectsMalformedInput) {
  std::string good = EncodeInodeAttr(SampleSymlink());
  EXPECT_EQ(DecodeInodeAttr("").status().code(), absl::StatusCode::kDataLoss);
  // Every truncation fails.
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(DecodeInodeAttr(good.substr(0, n)).ok()) << "length " << n;
  }
  EXPECT_FALSE(DecodeInodeAttr(good + std::string(1, '\0')).ok());
  std::string bad_version = good;
  bad_version[0] = 2;
  EXPECT_FALSE(DecodeInodeAttr(bad_version).ok());
  // A symlink target on a regular file.
  InodeAttr file = SampleSymlink();
  file.mode = S_IFREG | 0644;
  EXPECT_FALSE(DecodeInodeAttr(EncodeInodeAttr(file)).ok());
  // A huge length prefix must not be trusted.
  std::string huge = good.substr(0, good.size() - SampleSymlink().symlink_target.size() - 1);
  huge += "\xff\xff\xff\xff\x0f";
  EXPECT_FALSE(DecodeInodeAttr(huge).ok());
}

TEST(FsLayoutTest, InodeKeysRoundTripAndSortNumerically) {
  std::vector<uint64_t> inos = {1, 2, 255, 256, 65535, 1ull << 32, ~0ull};
  std::vector<std::string> keys;
  for (uint64_t ino : inos) {
    keys.push_back(InodeKey(ino));
    absl::StatusOr<uint64_t> parsed = ParseInodeKey(keys.back());
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, ino);
  }
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  EXPECT_FALSE(ParseInodeKey("I").ok());
  EXPECT_FALSE(ParseInodeKey(PageKey(1, 1)).ok());
  KeyRange all = AllInodesRange();
  EXPECT_LE(all.start, InodeKey(0));
  EXPECT_LT(InodeKey(~0ull), all.end);
}

TEST(FsLayoutTest, DirEntryRoundTrips) {
  for (FileType type : {FileType::kRegular, FileType::kDirectory, FileType::kSymlink,
                        FileType::kSocket, FileType::kUnknown}) {
    DirEntry entry{42, type};
    absl::StatusOr<DirEntry> decoded = DecodeDirEntry(EncodeDirEntry(entry));
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, entry);
  }
  std::string key = DirEntryKey(7, "name with spaces ü");
  absl::StatusOr<DirEntryKeyParts> parts = ParseDirEntryKey(key);
  ASSERT_TRUE(parts.ok());
  EXPECT_EQ(parts->parent_ino, 7u);
  EXPECT_EQ(parts->name, "name with spaces ü");
}

TEST(FsLayoutTest, DirEntryRejectsMalformedInput) {
  EXPECT_FALSE(DecodeDirEntry("").ok());
  EXPECT_FALSE(DecodeDirEntry(std::string(8, '\0') + "\x01").ok());  // inode 0
  std::string bad_type = EncodeDirEntry(DirEntry{5, FileType::kRegular});
  bad_type.back() = 99;
  EXPECT_FALSE(DecodeDirEntry(bad_type).ok());
  EXPECT_FALSE(DecodeDirEntry(EncodeDirEntry(DirEntry{5, FileType::kRegular}) + "x").ok());
  EXPECT_FALSE(ParseDirEntryKey(DirEntryPrefix(3)).ok());  // no name
  EXPECT_FALSE(ParseDirEntryKey(InodeKey(3)).ok());
}

TEST(FsLayoutTest, DirEntryRangeHoldsExactlyTheDirectorysEntries) {
  KeyRange range = DirEntryRange(5);
  auto in_range = [&](const std::string& key) { return range.start <= key && key < range.end; };
  EXPECT_TRUE(in_range(DirEntryKey(5, "a")));
  EXPECT_TRUE(in_range(DirEntryKey(5, "\xff\xff\xff")));
  EXPECT_FALSE(in_range(DirEntryKey(4, "\xff")));
  EXPECT_FALSE(in_range(DirEntryKey(6, "a")));
  EXPECT_FALSE(in_range(InodeKey(5)));
  // Entries of one directory sort by name bytes.
  EXPECT_LT(DirEntryKey(5, "a"), DirEntryKey(5, "ab"));
  EXPECT_LT(DirEntryKey(5, "ab"), DirEntryKey(5, "b"));
  // The last inode number still gets a bounded range.
  KeyRange last = DirEntryRange(~0ull);
  EXPECT_EQ(last.end, "E");
}

TEST(FsLayoutTest, DirEntryRangeAfterResumesAfterName) {
  KeyRange range = DirEntryRangeAfter(5, "b");
  auto in_range = [&](const std::string& key) { return range.start <= key && key < range.end; };
  EXPECT_FALSE(in_range(DirEntryKey(5, "a")));
  EXPECT_FALSE(in_range(DirEntryKey(5, "b")));
  EXPECT_TRUE(in_range(DirEntryKey(5, std::string("b\0", 2))));
  EXPECT_TRUE(in_range(DirEntryKey(5, "ba")));
  EXPECT_TRUE(in_range(DirEntryKey(5, "c")));
  EXPECT_FALSE(in_range(DirEntryKey(6, "")));
}

TEST(FsLayoutTest, ValidateNameRejectsReservedAndInvalidNames) {
  EXPECT_TRUE(ValidateName("pg_wal").ok());
  EXPECT_TRUE(ValidateName(std::string(kMaxNameBytes, 'x')).ok());
  EXPECT_FALSE(ValidateName("").ok());
  EXPECT_FALSE(ValidateName(".").ok());
  EXPECT_FALSE(ValidateName("..").ok());
  EXPECT_FALSE(ValidateName("a/b").ok());
  EXPECT_FALSE(ValidateName(std::string("a\0b", 3)).ok());
  EXPECT_FALSE(ValidateName(std::string(kMaxNameBytes + 1, 'x')).ok());
}

TEST(FsLayoutTest, PageKeysRoundTripAndSortByInodeThenBlock) {
  std::vector<std::string> keys = {PageKey(1, 0),          PageKey(1, 1), PageKey(1, 256),
                                   PageKey(1, 1ull << 40), PageKey(2, 0), PageKey(256, 0),
                                   PageKey(~0ull, ~0ull)};
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  absl::StatusOr<PageKeyParts> parts = ParsePageKey(PageKey(9, 1234567));
  ASSERT_TRUE(parts.ok());
  EXPECT_EQ(parts->ino, 9u);
  EXPECT_EQ(parts->block, 1234567u);
  EXPECT_FALSE(ParsePageKey(InodeKey(9)).ok());
  EXPECT_FALSE(ParsePageKey(PageKey(9, 1) + "x").ok());
}

TEST(FsLayoutTest, PageRangeHoldsExactlyTheInodesPages) {
  KeyRange all = PageRange(7);
  auto in = [](const KeyRange& r, const std::string& key) { return r.start <= key && key < r.end; };
  EXPECT_TRUE(in(all, PageKey(7, 0)));
  EXPECT_TRUE(in(all, PageKey(7, ~0ull)));
  EXPECT_FALSE(in(all, PageKey(6, ~0ull)));
  EXPECT_FALSE(in(all, PageKey(8, 0)));
  KeyRange some = PageRange(7, 2, 5);
  EXPECT_FALSE(in(some, PageKey(7, 1)));
  EXPECT_TRUE(in(some, PageKey(7, 2)));
  EXPECT_TRUE(in(some, PageKey(7, 4)));
  EXPECT_FALSE(in(some, PageKey(7, 5)));
}

TEST(FsLayoutTest, PageArithmetic) {
  EXPECT_EQ(PageCount(0), 0u);
  EXPECT_EQ(PageCount(1), 1u);
  EXPECT_EQ(PageCount(8191), 1u);
  EXPECT_EQ(PageCount(8192), 1u);
  EXPECT_EQ(PageCount(8193), 2u);
  EXPECT_EQ(BlockOf(8191), 0u);
  EXPECT_EQ(BlockOf(8192), 1u);
  EXPECT_EQ(BytesInBlock(8193, 0), kPageSize);
  EXPECT_EQ(BytesInBlock(8193, 1), 1u);
  EXPECT_EQ(BytesInBlock(8193, 2), 0u);
  EXPECT_EQ(BytesInBlock(100, ~0ull), 0u);
}

TEST(FsLayoutTest, ZeroPagesAndTrimming) {
  EXPECT_TRUE(IsAllZero(std::string(kPageSize, '\0')));
  EXPECT_TRUE(IsAllZero(""));
  std::string page(kPageSize, '\0');
  page[100] = 'x';
  EXPECT_FALSE(IsAllZero(page));
  EXPECT_EQ(TrimTrailingZeros(page).size(), 101u);
  EXPECT_EQ(TrimTrailingZeros(std::string(10, '\0')).size(), 0u);
  // The last non-zero byte at every position and odd lengths (the scan goes a word at a time).
  for (size_t len :
       {size_t{0}, size_t{1}, size_t{7}, size_t{8}, size_t{9}, size_t{17}, kPageSize}) {
    for (size_t last = 0; last < len; ++last) {
      std::string p(len, '\0');
      p[last] = '\x01';
      ASSERT_EQ(TrimTrailingZeros(p).size(), last + 1) << len << " " << last;
    }
    EXPECT_EQ(TrimTrailingZeros(std::string(len, '\0')).size(), 0u);
  }

  std::string stored(TrimTrailingZeros(page));
  std::vector<char> out(kPageSize, 'j');
  ExpandPage(&stored, out.data());
  EXPECT_EQ(std::string(out.data(), kPageSize), page);
  ExpandPage(nullptr, out.data());
  EXPECT_TRUE(IsAllZero(std::string_view(out.data(), kPageSize)));
  EXPECT_TRUE(ValidatePageValue(page).ok());
  EXPECT_FALSE(ValidatePageValue(page + "x").ok());
}

TEST(FsLayoutTest, FileTypesMapToModesAndDirentTypes) {
  for (FileType type :
       {FileType::kRegular, FileType::kDirectory, FileType::kSymlink, FileType::kFifo,
        FileType::kCharDevice, FileType::kBlockDevice, FileType::kSocket}) {
    EXPECT_EQ(FileTypeFromMode(ModeTypeBits(type) | 0755), type);
    EXPECT_NE(DirentType(type), DT_UNKNOWN);
  }
  EXPECT_EQ(FileTypeFromMode(0644), FileType::kUnknown);
  EXPECT_EQ(DirentType(FileType::kUnknown), DT_UNKNOWN);
}

TEST(FsLayoutTest, PageRangeFromReachesTheLastBlockOfTheLargestFile) {
  auto in = [](const KeyRange& r, const std::string& key) { return r.start <= key && key < r.end; };
  KeyRange tail = PageRangeFrom(7, 3);
  EXPECT_FALSE(in(tail, PageKey(7, 2)));
  EXPECT_TRUE(in(tail, PageKey(7, 3)));
  EXPECT_TRUE(in(tail, PageKey(7, BlockOf(kMaxFileSize))));
  EXPECT_TRUE(in(tail, PageKey(7, ~0ull)));
  EXPECT_FALSE(in(tail, PageKey(8, 0)));
  // The largest size's blocks fit the key's 64-bit block number with room to spare.
  EXPECT_EQ(PageCount(kMaxFileSize), (kMaxFileSize >> 13) + 1);
}

TEST(FsLayoutTest, OrphanKeysRoundTripAndStayInTheirRange) {
  auto in = [](const KeyRange& r, const std::string& key) { return r.start <= key && key < r.end; };
  EXPECT_EQ(*ParseOrphanKey(OrphanKey(42)), 42u);
  EXPECT_FALSE(ParseOrphanKey(InodeKey(42)).ok());
  EXPECT_FALSE(ParseOrphanKey("O").ok());
  KeyRange all = AllOrphansRange();
  EXPECT_TRUE(in(all, OrphanKey(1)));
  EXPECT_TRUE(in(all, OrphanKey(~0ull)));
  EXPECT_FALSE(in(all, PageKey(1, 0)));
  EXPECT_FALSE(in(all, InodeKey(~0ull)));
}

TEST(FsLayoutTest, KindsOfKeysDoNotOverlap) {
  // Every kind has its own tag, so the prefix ranges of different kinds are disjoint.
  std::vector<std::string> keys = {DirEntryKey(~0ull, "zzz"), InodeKey(1), OrphanKey(1),
                                   PageKey(1, 0), SuperblockKey()};
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  EXPECT_EQ(PrefixSuccessor("\xff\xff"), "");
  EXPECT_EQ(PrefixSuccessor("a\xff"), "b");
}

}  // namespace
}  // namespace pgbranch::fs
