#include "pageserver/pagefs/volatile_files.h"

#include "gtest/gtest.h"

namespace pgbranch::pagefs {
namespace {

constexpr uint64_t kRoot = 1;

TEST(VolatileFilesTest, MatchesTheFileAtTheEndOfItsPath) {
  VolatileFiles v({"pgdata/postmaster.pid"});
  v.Note(kRoot, "pgdata", 10, /*is_dir=*/true);
  v.Note(10, "postmaster.pid", 11, /*is_dir=*/false);
  v.Note(10, "postmaster.opts", 12, /*is_dir=*/false);
  EXPECT_TRUE(v.Contains(11));
  EXPECT_FALSE(v.Contains(12));
  EXPECT_FALSE(v.Contains(10));
}

TEST(VolatileFilesTest, TheSameNameElsewhereDoesNotMatch) {
  VolatileFiles v({"pgdata/postmaster.pid"});
  v.Note(kRoot, "postmaster.pid", 20, false);  // at the root, not in pgdata
  v.Note(kRoot, "other", 21, true);
  v.Note(21, "postmaster.pid", 22, false);
  v.Note(kRoot, "pgdata", 23, false);  // a file named like the directory
  v.Note(23, "postmaster.pid", 24, false);
  EXPECT_FALSE(v.Contains(20));
  EXPECT_FALSE(v.Contains(22));
  EXPECT_FALSE(v.Contains(24));
}

TEST(VolatileFilesTest, ADirectoryNamedLikeTheFileIsNotIt) {
  VolatileFiles v({"pgdata/postmaster.pid"});
  v.Note(kRoot, "pgdata", 10, true);
  v.Note(10, "postmaster.pid", 11, /*is_dir=*/true);
  EXPECT_FALSE(v.Contains(11));
}

TEST(VolatileFilesTest, ForgottenInodesLeaveAndAreLearnedAgain) {
  VolatileFiles v({"pgdata/postmaster.pid"});
  v.Note(kRoot, "pgdata", 10, true);
  v.Note(10, "postmaster.pid", 11, false);
  v.Forget(11);
  EXPECT_FALSE(v.Contains(11));
  v.Forget(10);  // the directory: its entries no longer match until it is learned again
  v.Note(10, "postmaster.pid", 12, false);
  EXPECT_FALSE(v.Contains(12));
  v.Note(kRoot, "pgdata", 10, true);
  v.Note(10, "postmaster.pid", 12, false);
  EXPECT_TRUE(v.Contains(12));
  v.Forget(kRoot);  // never forgotten: the root stays the start of every path
  v.Note(kRoot, "pgdata", 13, true);
  v.Note(13, "postmaster.pid", 14, false);
  EXPECT_TRUE(v.Contains(14));
}

TEST(VolatileFilesTest, SeveralPathsAndDeeperOnes) {
  VolatileFiles v({"a/b/c", "/a/./d/", "x"});
  EXPECT_TRUE(v.MayMatch("b"));
  EXPECT_TRUE(v.MayMatch("d"));
  EXPECT_FALSE(v.MayMatch("."));
  EXPECT_FALSE(v.MayMatch("e"));
  v.Note(kRoot, "a", 2, true);
  v.Note(2, "b", 3, true);
  v.Note(3, "c", 4, false);
  v.Note(2, "d", 5, false);
  v.Note(kRoot, "x", 6, false);
  v.Note(2, "c", 7, false);  // a/c is not a/b/c
  EXPECT_TRUE(v.Contains(4));
  EXPECT_TRUE(v.Contains(5));
  EXPECT_TRUE(v.Contains(6));
  EXPECT_FALSE(v.Contains(7));
  v.Note(kRoot, "a", 2, true);  // learned again: not recorded twice
  v.Forget(2);
  v.Note(2, "d", 8, false);
  EXPECT_FALSE(v.Contains(8));
}

TEST(VolatileFilesTest, NoPathsMatchNothing) {
  VolatileFiles v({"", "/", "."});
  EXPECT_TRUE(v.empty());
  v.Note(kRoot, "", 2, false);
  EXPECT_FALSE(v.Contains(2));
  EXPECT_FALSE(v.MayMatch(""));
}

}  // namespace
}  // namespace pgbranch::pagefs
