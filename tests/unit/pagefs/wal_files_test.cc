#include "pageserver/pagefs/wal_files.h"

#include "gtest/gtest.h"

namespace pgbranch::pagefs {
namespace {

TEST(WalFilesTest, FilesOfADirectoryNamedPgWalOnly) {
  WalFiles w;
  w.Note(1, "pg_wal", 10, /*is_dir=*/true);
  w.Note(1, "base", 11, /*is_dir=*/true);
  w.Note(10, "000000010000000000000001", 20, /*is_dir=*/false);
  w.Note(10, "archive_status", 21, /*is_dir=*/true);
  w.Note(21, "000000010000000000000001.done", 22, /*is_dir=*/false);
  w.Note(11, "16384", 23, /*is_dir=*/false);
  w.Note(1, "pg_wal_file", 24, /*is_dir=*/false);  // a file named like the directory
  EXPECT_TRUE(w.Contains(20));
  EXPECT_FALSE(w.Contains(10));  // the directory itself
  EXPECT_FALSE(w.Contains(21));
  EXPECT_FALSE(w.Contains(22));  // pg_wal/archive_status/* is not WAL
  EXPECT_FALSE(w.Contains(23));
  EXPECT_FALSE(w.Contains(24));
}

TEST(WalFilesTest, AFileSeenBeforeItsDirectoryIsNotWal) {
  WalFiles w;
  w.Note(10, "000000010000000000000001", 20, false);
  w.Note(1, "pg_wal", 10, true);
  EXPECT_FALSE(w.Contains(20));
  w.Note(10, "000000010000000000000001", 20, false);  // looked up again
  EXPECT_TRUE(w.Contains(20));
}

TEST(WalFilesTest, ForgottenInodesLeaveTheSet) {
  WalFiles w;
  w.Note(1, "pg_wal", 10, true);
  w.Note(10, "000000010000000000000001", 20, false);
  w.Forget(20);
  EXPECT_FALSE(w.Contains(20));
  w.Forget(10);  // the directory: its files learnt later are not WAL until it is looked up again
  w.Note(10, "000000010000000000000002", 30, false);
  EXPECT_FALSE(w.Contains(30));
  w.Note(1, "pg_wal", 10, true);
  w.Note(10, "000000010000000000000002", 30, false);
  EXPECT_TRUE(w.Contains(30));
}

}  // namespace
}  // namespace pgbranch::pagefs
