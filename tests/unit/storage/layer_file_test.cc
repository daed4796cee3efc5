#include "pageserver/storage/layer_file.h"

#include <vector>

#include "gtest/gtest.h"
#include "pageserver/storage/mem_env.h"

namespace pgbranch::storage {
namespace {

struct Written {
  uint64_t offset;
  uint32_t crc;
};

TEST(LayerFileTest, WritesAndReadsEntriesWithChecksums) {
  MemEnv env;
  auto f = env.NewWritableFile("/l");
  ASSERT_TRUE(f.ok());
  LayerWriter w(std::move(*f));
  std::vector<Written> at;
  uint32_t crc;
  for (int i = 0; i < 3; ++i) {
    auto off = w.Add("key" + std::to_string(i), 10 + i, std::string(8192, 'a' + i), false, &crc);
    ASSERT_TRUE(off.ok());
    at.push_back({*off, crc});
  }
  ASSERT_TRUE(w.Add("key9", 20, "", true, &crc).ok());
  ASSERT_TRUE(w.Finish().ok());

  auto layer = LayerFile::Open(&env, "/l", 7);
  ASSERT_TRUE(layer.ok()) << layer.status();
  std::vector<std::string> keys;
  (*layer)->ForEach([&](const LayerEntry& e) { keys.push_back(std::string(e.key)); });
  EXPECT_EQ(keys, (std::vector<std::string>{"key0", "key1", "key2", "key9"}));
  std::string value;
  ASSERT_TRUE((*layer)->ReadValue(at[1].offset, 8192, at[1].crc, &value).ok());
  EXPECT_EQ(value, std::string(8192, 'b'));
}

TEST(LayerFileTest, DetectsCorruptValuesAndIndexes) {
  MemEnv env;
  auto f = env.NewWritableFile("/l");
  LayerWriter w(std::move(*f));
  uint32_t crc;
  auto off = w.Add("k", 1, "hello world", false, &crc);
  ASSERT_TRUE(w.Finish().ok());
  ASSERT_TRUE(env.CorruptByte("/l", 3).ok());
  auto layer = LayerFile::Open(&env, "/l", 1);
  ASSERT_TRUE(layer.ok());
  std::string value;
  absl::Status s = (*layer)->ReadValue(*off, 11, crc, &value);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(value.empty());  // never served

  ASSERT_TRUE(env.CorruptByte("/l", 13).ok());  // inside the index
  EXPECT_EQ(LayerFile::Open(&env, "/l", 1).status().code(), absl::StatusCode::kDataLoss);
  ASSERT_TRUE(env.TruncateFile("/l", 10).ok());
  EXPECT_EQ(LayerFile::Open(&env, "/l", 1).status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace pgbranch::storage
