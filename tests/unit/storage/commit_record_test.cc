// FrameCommitRecord: the hand-encoded commit frame is byte for byte what protobuf serialises (so
// replay, which parses it with protobuf, reads the same commit), and its checksum -- assembled
// from the values' own checksums -- is the Crc32 of the payload; the log frames it exactly as a
// record checksummed in full.
#include "pageserver/storage/commit_record.h"

#include <random>

#include "common/coding.h"
#include "gtest/gtest.h"
#include "pageserver/storage/log_writer.h"
#include "pageserver/storage/mem_env.h"
#include "pageserver/storage/storage.pb.h"

namespace pgbranch::storage {
namespace {

std::vector<Mutation> SomeMutations() {
  std::mt19937 rng(3);
  std::vector<Mutation> muts;
  muts.push_back({"k/page/1", std::string(8192, 'a'), false});
  muts.push_back({"k/page/2", "", true});                   // a deletion
  muts.push_back({"k/empty", "", false});                   // an empty value
  muts.push_back({std::string(300, 'K'), "short", false});  // a key with a 2-byte length
  std::string big(200000, '\0');
  for (char& c : big) c = static_cast<char>(rng());
  muts.push_back({"k/big", big, false});
  return muts;
}

std::vector<uint32_t> CrcsOf(const std::vector<Mutation>& muts) {
  std::vector<uint32_t> crcs;
  for (const Mutation& m : muts) crcs.push_back(m.tombstone ? 0 : Crc32(m.value));
  return crcs;
}

std::string Protobuf(const std::string& tenant, const std::string& timeline, uint64_t lsn,
                     int64_t time, const std::vector<Mutation>& muts) {
  pb::LogRecord record;
  pb::Commit* c = record.mutable_commit();
  c->set_tenant_id(tenant);
  c->set_timeline_id(timeline);
  c->set_lsn(lsn);
  c->set_time_micros(time);
  for (const Mutation& m : muts) {
    pb::Mutation* pm = c->add_mutations();
    pm->set_key(m.key);
    if (m.tombstone) {
      pm->set_tombstone(true);
    } else {
      pm->set_value(m.value);
    }
  }
  return record.SerializeAsString();
}

TEST(CommitRecordTest, EncodesAsProtobufWithTheChecksumOfThePayload) {
  std::vector<Mutation> muts = SomeMutations();
  struct Case {
    std::string tenant, timeline;
    uint64_t lsn;
    int64_t time;
  };
  for (const Case& c : {Case{"tenant", "0123456789abcdef", 1, 1700000000000000}, Case{"", "", 0, 0},
                        Case{"t", "l", 1ull << 40, -5}}) {
    uint32_t crc = 0;
    std::string frame =
        FrameCommitRecord(c.tenant, c.timeline, c.lsn, c.time, muts, CrcsOf(muts), &crc);
    ASSERT_GE(frame.size(), LogWriter::kHeaderSize);
    std::string_view payload = std::string_view(frame).substr(LogWriter::kHeaderSize);
    EXPECT_EQ(payload, Protobuf(c.tenant, c.timeline, c.lsn, c.time, muts)) << c.lsn;
    EXPECT_EQ(crc, Crc32(payload)) << c.lsn;
  }
}

TEST(CommitRecordTest, TheLogFramesItAsARecordChecksummedInFull) {
  MemEnv env;
  std::vector<Mutation> muts = SomeMutations();
  for (bool known_crc : {false, true}) {
    std::string path = known_crc ? "/known" : "/full";
    auto f = env.NewWritableFile(path);
    ASSERT_TRUE(f.ok());
    LogWriter w(std::move(*f), 7, 1 << 20);
    uint32_t crc = 0;
    std::string frame = FrameCommitRecord("t", "l", 9, 42, muts, CrcsOf(muts), &crc);
    ASSERT_TRUE((known_crc ? w.AddFramedRecord(&frame, crc) : w.AddFramedRecord(&frame)).ok());
    ASSERT_TRUE(w.Sync().ok());
  }
  auto full = ReadFileToString(&env, "/full");
  auto known = ReadFileToString(&env, "/known");
  ASSERT_TRUE(full.ok() && known.ok());
  EXPECT_EQ(*full, *known);
  LogReader r(*known, 7);
  std::string_view payload;
  ASSERT_TRUE(r.ReadRecord(&payload));
  pb::LogRecord record;
  ASSERT_TRUE(record.ParseFromArray(payload.data(), static_cast<int>(payload.size())));
  EXPECT_EQ(record.commit().mutations_size(), static_cast<int>(muts.size()));
  EXPECT_EQ(record.commit().mutations(4).value(), muts[4].value);
}

}  // namespace
}  // namespace pgbranch::storage

namespace pgbranch::storage {
namespace {

std::vector<MutationView> ViewsOf(const std::vector<Mutation>& muts) {
  std::vector<MutationView> v;
  for (const Mutation& m : muts) v.push_back({m.key, m.value, m.tombstone});
  return v;
}

// The group path (AppendCommitRecord into a LogBatch, one LogWriter::AddBatch; large values
// referenced, small ones copied) writes byte for byte the log of the one-record-at-a-time path
// (the protobuf serialization of each record through AddRecord), and LogReader reads it back.
TEST(CommitRecordTest, AGroupWrittenInOneBatchIsTheLogOfRecordsWrittenOneByOne) {
  MemEnv env;
  std::vector<Mutation> muts = SomeMutations();
  std::vector<Mutation> small = {{"s/1", std::string(511, 's'), false},
                                 {"s/2", std::string(512, 't'), false},
                                 {"s/3", "", true}};
  auto a = env.NewWritableFile("/old");
  auto b = env.NewWritableFile("/new");
  ASSERT_TRUE(a.ok() && b.ok());
  LogWriter old_log(std::move(*a), 5, 1 << 20), new_log(std::move(*b), 5, 1 << 20);
  LogBatch batch;
  std::vector<std::string> payloads;
  for (int round = 0; round < 2; ++round) {
    batch.Clear();
    for (uint64_t lsn = 1; lsn <= 3; ++lsn) {
      const std::vector<Mutation>& m = lsn == 2 ? small : muts;
      std::vector<MutationView> views = ViewsOf(m);
      std::vector<uint32_t> crcs = CrcsOf(m);
      AppendCommitRecord("tenant", "timeline", lsn + 3 * round, 1000 + lsn, views.data(),
                         views.size(), crcs.data(), &batch);
      payloads.push_back(Protobuf("tenant", "timeline", lsn + 3 * round, 1000 + lsn, m));
      ASSERT_TRUE(old_log.AddRecord(payloads.back()).ok());
    }
    batch.AddRecord("a metadata record");
    payloads.push_back("a metadata record");
    ASSERT_TRUE(old_log.AddRecord(payloads.back()).ok());
    ASSERT_TRUE(new_log.AddBatch(&batch).ok());
    ASSERT_EQ(new_log.Size(), old_log.Size());
  }
  ASSERT_TRUE(old_log.Sync().ok() && new_log.Sync().ok());
  std::string old_bytes = *ReadFileToString(&env, "/old");
  std::string new_bytes = *ReadFileToString(&env, "/new");
  EXPECT_EQ(old_bytes, new_bytes);
  LogReader r(new_bytes, 5);
  std::string_view payload;
  for (const std::string& p : payloads) {
    ASSERT_TRUE(r.ReadRecord(&payload));
    EXPECT_EQ(payload, p);
  }
  EXPECT_FALSE(r.ReadRecord(&payload));
  EXPECT_TRUE(r.CleanTail());
}

}  // namespace
}  // namespace pgbranch::storage
