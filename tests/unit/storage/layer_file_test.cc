#include "pageserver/storage/layer_file.h"

#include <vector>

#include "common/coding.h"
#include "gtest/gtest.h"
#include "pageserver/storage/mem_env.h"
#include "tests/unit/storage/write_out_recorder.h"

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

TEST(LayerFileTest, ALargeLayerIsWrittenOutInPiecesAsItIsWritten) {
  // A layer is written while commits fdatasync the log: each kWriteOutBytes of values is written
  // out once written, in order, by either way of building a layer; Finish syncs the rest.
  MemEnv env;
  for (bool region : {false, true}) {
    std::string path = region ? "/region" : "/entries";
    auto f = env.NewWritableFile(path);
    ASSERT_TRUE(f.ok());
    auto recorder = std::make_unique<WriteOutRecorder>(std::move(*f));
    const WriteOutRecorder* rec = recorder.get();
    LayerWriter w(std::move(recorder));
    const std::string value(1 << 20, 'v');
    const int n = 10;  // 10 MiB: two whole pieces, and 2 MiB left for Finish's Sync
    uint32_t crc;
    if (region) {
      ASSERT_TRUE(w.AppendValueRegion(n * value.size(), [&](WritableFile* file) {
                     for (int i = 0; i < n; ++i) {
                       if (absl::Status s = file->Append(value); !s.ok()) return s;
                     }
                     return absl::OkStatus();
                   }).ok());
      for (int i = 0; i < n; ++i) {
        w.AddIndexEntry("k" + std::to_string(i), 1, i * value.size(), value.size(), Crc32(value));
      }
    } else {
      for (int i = 0; i < n; ++i) {
        ASSERT_TRUE(w.Add("k" + std::to_string(i), 1, value, false, &crc).ok());
      }
    }
    ASSERT_EQ(rec->events().size(), 2u) << path;
    for (size_t i = 0; i < 2; ++i) {
      const auto& e = rec->events()[i];
      EXPECT_FALSE(e.sync);
      EXPECT_EQ(e.offset, i * kWriteOutBytes);
      EXPECT_EQ(e.length, kWriteOutBytes);
      EXPECT_GE(e.written, e.offset + e.length);
    }
    ASSERT_TRUE(w.Finish().ok());
    ASSERT_EQ(rec->events().size(), 3u);
    EXPECT_TRUE(rec->events()[2].sync);
    auto layer = LayerFile::Open(&env, path, 1);
    ASSERT_TRUE(layer.ok()) << layer.status();
    std::string read;
    ASSERT_TRUE((*layer)->ReadValue(9 * value.size(), value.size(), Crc32(value), &read).ok());
    EXPECT_EQ(read, value);
  }
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
