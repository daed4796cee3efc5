#include "pageserver/storage/log_writer.h"

#include "common/coding.h"
#include "gtest/gtest.h"
#include "pageserver/storage/mem_env.h"
#include "tests/unit/storage/write_out_recorder.h"

namespace pgbranch::storage {
namespace {

TEST(LogTest, RoundTripsRecordsAndStopsAtATornTail) {
  MemEnv env;
  auto f = env.NewWritableFile("/log");
  ASSERT_TRUE(f.ok());
  LogWriter w(std::move(*f), 1, 4096);
  ASSERT_TRUE(w.AddRecord("first").ok());
  ASSERT_TRUE(w.AddRecord(std::string(100000, 'x')).ok());
  ASSERT_TRUE(w.Sync().ok());
  ASSERT_TRUE(w.AddRecord("torn").ok());
  auto contents = ReadFileToString(&env, "/log");
  ASSERT_TRUE(contents.ok());
  ASSERT_GT(contents->size(), w.Size());  // zero-filled ahead of the records
  std::string torn = contents->substr(0, w.Size() - 2);

  LogReader r(torn, 1);
  std::string_view p;
  ASSERT_TRUE(r.ReadRecord(&p));
  EXPECT_EQ(p, "first");
  ASSERT_TRUE(r.ReadRecord(&p));
  EXPECT_EQ(p.size(), 100000u);
  EXPECT_FALSE(r.ReadRecord(&p));
  EXPECT_LT(r.ValidBytes(), r.TotalBytes());
}

TEST(LogTest, AFramedRecordIsTheSameBytesAsAddRecordAndAFrameWithoutAHeaderIsRefused) {
  MemEnv env;
  auto a = env.NewWritableFile("/a");
  auto b = env.NewWritableFile("/b");
  ASSERT_TRUE(a.ok() && b.ok());
  LogWriter wa(std::move(*a), 7, 4096), wb(std::move(*b), 7, 4096);
  std::string big(100000, 'y');
  ASSERT_TRUE(wa.AddRecord("first").ok());
  ASSERT_TRUE(wa.AddRecord(big).ok());
  std::string f1 = std::string(LogWriter::kHeaderSize, '\0') + "first";
  std::string f2 = std::string(LogWriter::kHeaderSize, '\0') + big;
  ASSERT_TRUE(wb.AddFramedRecord(&f1).ok());
  ASSERT_TRUE(wb.AddFramedRecord(&f2).ok());
  ASSERT_EQ(wa.Size(), wb.Size());
  EXPECT_EQ(ReadFileToString(&env, "/a")->substr(0, wa.Size()),
            ReadFileToString(&env, "/b")->substr(0, wb.Size()));
  std::string short_frame = "abc";
  EXPECT_FALSE(wb.AddFramedRecord(&short_frame).ok());
  EXPECT_EQ(wb.Size(), wa.Size());  // nothing written
}

TEST(LogTest, ASegmentsZeroFillIsWrittenOutInPiecesBeforeItsSync) {
  // A spare segment is zero-filled while commits fdatasync the log: written out kWriteOutBytes at
  // a time, in order, each piece already written, and then synced once.
  MemEnv env;
  auto f = env.NewWritableFile("/log");
  ASSERT_TRUE(f.ok());
  auto recorder = std::make_unique<WriteOutRecorder>(std::move(*f));
  const WriteOutRecorder* rec = recorder.get();
  const uint64_t segment = 5 * kWriteOutBytes + 12345;
  LogWriter w(std::move(recorder), 1, segment);
  ASSERT_TRUE(w.Reserve(1).ok());
  const auto& ev = rec->events();
  ASSERT_EQ(ev.size(), 6u);  // five whole pieces, then the Sync that covers the rest
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_FALSE(ev[i].sync);
    EXPECT_EQ(ev[i].offset, i * kWriteOutBytes);
    EXPECT_EQ(ev[i].length, kWriteOutBytes);
    EXPECT_GE(ev[i].written, ev[i].offset + ev[i].length);
  }
  EXPECT_TRUE(ev[5].sync);
  EXPECT_EQ(ev[5].written, segment);
  EXPECT_EQ(ReadFileToString(&env, "/log")->size(), segment);
}

TEST(LogTest, RejectsACorruptRecordAndAZeroFilledTail) {
  MemEnv env;
  auto f = env.NewWritableFile("/log");
  LogWriter w(std::move(*f), 1, 4096);
  ASSERT_TRUE(w.AddRecord("payload").ok());
  std::string data = ReadFileToString(&env, "/log")->substr(0, w.Size());
  std::string corrupt = data;
  corrupt[10] ^= 1;
  std::string_view p;
  LogReader bad(corrupt, 1);
  EXPECT_FALSE(bad.ReadRecord(&p));
  LogReader zeros(data + std::string(64, 0), 1);
  ASSERT_TRUE(zeros.ReadRecord(&p));
  EXPECT_FALSE(zeros.ReadRecord(&p));
}

TEST(LogTest, TruncateDropsAFailedGroup) {
  MemEnv env;
  auto f = env.NewWritableFile("/log");
  LogWriter w(std::move(*f), 1, 4096);
  ASSERT_TRUE(w.AddRecord("kept").ok());
  uint64_t size = w.Size();
  ASSERT_TRUE(w.AddRecord("dropped").ok());
  ASSERT_TRUE(w.TruncateTo(size).ok());
  LogReader r(*ReadFileToString(&env, "/log"), 1);
  std::string_view p;
  ASSERT_TRUE(r.ReadRecord(&p));
  EXPECT_EQ(p, "kept");
  EXPECT_FALSE(r.ReadRecord(&p));
}

TEST(LogTest, ARecycledSegmentEndsBeforeItsStaleRecords) {
  MemEnv env;
  {
    auto f = env.NewWritableFile("/log");
    LogWriter w(std::move(*f), 1, 4096);
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(w.AddRecord("old record " + std::to_string(i)).ok());
    ASSERT_TRUE(w.Sync().ok());
  }
  auto f = env.ReopenWritableFile("/log");
  ASSERT_TRUE(f.ok());
  uint64_t size = (*f)->Size();
  LogWriter w(std::move(*f), 2, 4096, size);
  ASSERT_TRUE(w.AddRecord("new").ok());
  LogReader r(*ReadFileToString(&env, "/log"), 2);
  std::string_view p;
  ASSERT_TRUE(r.ReadRecord(&p));
  EXPECT_EQ(p, "new");
  EXPECT_FALSE(r.ReadRecord(&p));  // the next bytes are segment 1's: wrong checksum seed
}

// A group write (one WriteAtV of several records) that fails part way may leave whole, valid
// records behind the end of the log's records: TruncateTo zeroes up to the furthest byte the
// write reached, so that no reader -- nor the next, shorter group written over it -- finds them.
TEST(LogTest, AGroupWriteThatFailsPartWayIsCutBackWhole) {
  MemEnv env;
  auto f = env.NewWritableFile("/log");
  ASSERT_TRUE(f.ok());
  LogWriter w(std::move(*f), 3, 1 << 20);
  ASSERT_TRUE(w.AddRecord("kept").ok());
  ASSERT_TRUE(w.Sync().ok());
  const uint64_t before = w.Size();
  LogBatch group;
  group.AddRecord("first of the failed group");
  const std::string big(4000, 'v');
  group.BeginRecord();
  group.AppendValue(big, Crc32(big));  // referenced by the batch, not copied
  group.EndRecord();
  group.AddRecord("third of the failed group");
  // The first two records land whole, the third is torn.
  env.SetWriteBudget(static_cast<int64_t>(group.bytes() - 10));
  EXPECT_FALSE(w.AddBatch(&group).ok());
  EXPECT_EQ(w.Size(), before);
  {
    // Before the cut, a reader would find the failed group's whole records.
    LogReader r(*ReadFileToString(&env, "/log"), 3);
    std::string_view p;
    int records = 0;
    while (r.ReadRecord(&p)) ++records;
    EXPECT_EQ(records, 3);
  }
  ASSERT_TRUE(w.TruncateTo(before).ok());
  // As long as the failed group's first record: its second would follow, whole, if not cut.
  const std::string after(std::string("first of the failed group").size(), 'n');
  LogBatch next;
  next.AddRecord(after);
  ASSERT_TRUE(w.AddBatch(&next).ok());
  ASSERT_TRUE(w.Sync().ok());
  LogReader r(*ReadFileToString(&env, "/log"), 3);
  std::string_view p;
  ASSERT_TRUE(r.ReadRecord(&p));
  EXPECT_EQ(p, "kept");
  ASSERT_TRUE(r.ReadRecord(&p));
  EXPECT_EQ(p, after);
  EXPECT_FALSE(r.ReadRecord(&p));
  EXPECT_TRUE(r.CleanTail());
}

}  // namespace
}  // namespace pgbranch::storage
