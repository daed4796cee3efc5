#include "pageserver/storage/mem_env.h"

#include "gtest/gtest.h"

namespace pgbranch::storage {
namespace {

TEST(MemEnvTest, CrashKeepsOnlySyncedDataAndSyncedDirectoryEntries) {
  MemEnv env;
  auto a = env.NewWritableFile("/d/a");
  ASSERT_TRUE((*a)->Append("durable").ok());
  ASSERT_TRUE((*a)->Sync().ok());
  ASSERT_TRUE(env.SyncDir("/d").ok());
  ASSERT_TRUE((*a)->Append("-lost").ok());
  auto b = env.NewWritableFile("/d/b");  // never dir-synced
  ASSERT_TRUE((*b)->Append("x").ok());
  ASSERT_TRUE((*b)->Sync().ok());
  env.SimulateCrash();
  EXPECT_EQ(*ReadFileToString(&env, "/d/a"), "durable");
  EXPECT_FALSE(env.FileExists("/d/b"));
}

TEST(MemEnvTest, RenameIsDurableOnlyAfterDirectorySync) {
  MemEnv env;
  ASSERT_TRUE(WriteFileAtomically(&env, "/d/m", "v1").ok());
  auto f = env.NewWritableFile("/d/m.new");
  ASSERT_TRUE((*f)->Append("v2").ok());
  ASSERT_TRUE((*f)->Sync().ok());
  ASSERT_TRUE(env.RenameFile("/d/m.new", "/d/m").ok());
  env.SimulateCrash();
  EXPECT_EQ(*ReadFileToString(&env, "/d/m"), "v1");
}

TEST(MemEnvTest, InjectsFullDiskAndSyncErrors) {
  MemEnv env;
  auto f = env.NewWritableFile("/f");
  env.SetSpaceBudget(4);
  EXPECT_TRUE((*f)->Append("abcd").ok());
  EXPECT_EQ((*f)->Append("e").code(), absl::StatusCode::kResourceExhausted);
  env.SetSyncFailure(true);
  EXPECT_FALSE((*f)->Sync().ok());
}

}  // namespace
}  // namespace pgbranch::storage
