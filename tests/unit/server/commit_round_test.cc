// CommitRound's bounds: one generation, at most kMaxRequests, at most kMaxBytes unless alone.
#include "pageserver/server/commit_round.h"

#include "common/frame_io.h"
#include "gtest/gtest.h"

namespace pgbranch::pageserver {
namespace {

v1::CommitRequest Req(uint64_t generation) {
  v1::CommitRequest r;
  r.set_generation(generation);
  return r;
}

TEST(CommitRoundTest, Bounds) {
  CommitRound round;
  EXPECT_TRUE(round.Accepts(Req(3), CommitRound::kMaxBytes + 1));  // a lone big request
  round.Add(Req(3), 10);
  EXPECT_FALSE(round.Accepts(Req(4), 10));  // another generation: the next round's
  EXPECT_FALSE(round.Accepts(Req(3), CommitRound::kMaxBytes - 9));
  EXPECT_TRUE(round.Accepts(Req(3), CommitRound::kMaxBytes - 10));
  while (!round.full()) round.Add(Req(3), 1);
  EXPECT_EQ(round.size(), CommitRound::kMaxRequests);
  EXPECT_FALSE(round.Accepts(Req(3), 1));
}

TEST(CommitRoundTest, Answers) {
  v1::CommitResponse a = CommitRound::Answer({/*lsn=*/42, /*time_micros=*/7});
  EXPECT_EQ(a.lsn(), 42u);
  EXPECT_EQ(a.commit_time_micros(), 7);
  v1::CommitResponse e = CommitRound::ErrorAnswer(absl::StatusCode::kAborted, "fenced");
  EXPECT_EQ(e.error_code(), static_cast<int>(absl::StatusCode::kAborted));
  EXPECT_EQ(e.error_message(), "fenced");
}

// The hand-encoded answer frames are AppendFrame of protobuf's serialization.
TEST(CommitRoundTest, AnswerFramesAreTheSerializedAnswers) {
  for (storage::CommitResult r : {storage::CommitResult{42, 7}, storage::CommitResult{0, 0},
                                  storage::CommitResult{1ull << 62, -3}}) {
    std::string want, got;
    AppendFrame(CommitRound::Answer(r).SerializeAsString(), &want);
    CommitRound::AppendAnswerFrame(r, &got);
    EXPECT_EQ(got, want) << r.lsn;
  }
  for (absl::StatusCode c : {absl::StatusCode::kAborted, absl::StatusCode::kOk}) {
    for (std::string msg : {std::string("fenced"), std::string(), std::string(300, 'm')}) {
      std::string want, got;
      AppendFrame(CommitRound::ErrorAnswer(c, msg).SerializeAsString(), &want);
      CommitRound::AppendErrorAnswerFrame(c, msg, &got);
      EXPECT_EQ(got, want) << msg;
    }
  }
}

v1::CommitRequest Full(const std::string& tenant, uint64_t generation) {
  v1::CommitRequest r;
  r.set_tenant_id(tenant);
  r.set_timeline_id("timeline");
  r.set_generation(generation);
  v1::Mutation* m = r.add_mutations();
  m->set_key("k1");
  m->set_value(std::string(9000, 'v'));
  m = r.add_mutations();
  m->set_key("k2");
  m->set_tombstone(true);
  r.add_mutations();  // empty
  m = r.add_mutations();
  m->set_key(std::string(200, 'K'));
  m->set_value("x");
  return r;
}

// ParseCommitRequest reads what protobuf reads, as views into the bytes.
TEST(CommitRoundTest, ParseCommitRequestReadsWhatProtobufReads) {
  std::vector<std::string> inputs;
  inputs.push_back(Full("tenant", 7).SerializeAsString());
  inputs.push_back(Full("", 0).SerializeAsString());
  inputs.push_back(v1::CommitRequest().SerializeAsString());
  // Fields out of order, repeated (the last wins), unknown fields of every wire type.
  {
    std::string s = Full("first", 1).SerializeAsString();
    v1::CommitRequest tail;
    tail.set_tenant_id("second");
    tail.set_generation(9);
    s += tail.SerializeAsString();
    s += std::string("\x28\x05", 2);                       // field 5, varint
    s += std::string("\x31", 1) + std::string(8, '\x01');  // field 6, fixed64
    s += std::string("\x3a\x02zz", 4);                     // field 7, bytes
    s += std::string("\x45", 1) + std::string(4, '\x02');  // field 8, fixed32
    s += std::string("\x80\x01\x01", 3);                   // field 16: a 2-byte tag, varint
    s += std::string("\x1a\x00", 2);  // field 3 with the wrong wire type: unknown
    inputs.push_back(s);
  }
  for (const std::string& in : inputs) {
    v1::CommitRequest want;
    ASSERT_TRUE(want.ParseFromString(in));
    std::vector<storage::MutationView> muts = {{"before", "", false}};
    CommitRequestView got;
    ASSERT_TRUE(ParseCommitRequest(in, &got, &muts));
    EXPECT_EQ(got.tenant_id, want.tenant_id());
    EXPECT_EQ(got.timeline_id, want.timeline_id());
    EXPECT_EQ(got.generation, want.generation());
    ASSERT_EQ(got.begin, 1u);
    ASSERT_EQ(got.end - got.begin, static_cast<size_t>(want.mutations_size()));
    for (int i = 0; i < want.mutations_size(); ++i) {
      const storage::MutationView& m = muts[got.begin + i];
      EXPECT_EQ(m.key, want.mutations(i).key());
      EXPECT_EQ(m.value, want.mutations(i).value());
      EXPECT_EQ(m.tombstone, want.mutations(i).tombstone());
      if (!m.value.empty()) {  // a view into the input, not a copy
        EXPECT_GE(m.value.data(), in.data());
        EXPECT_LE(m.value.data() + m.value.size(), in.data() + in.size());
      }
    }
  }
  // What protobuf refuses, and the mutations are left as they were.
  std::string good = Full("tenant", 7).SerializeAsString();
  std::vector<std::string> bad = {good.substr(0, good.size() - 1),     // truncated
                                  std::string("\x0a\x02\xc3\x28", 4),  // tenant not UTF-8
                                  std::string("\x00\x01", 2),          // field 0
                                  std::string("\x0b", 1),              // a group
                                  std::string("\x18\xff", 2)};         // a cut varint
  for (const std::string& in : bad) {
    v1::CommitRequest want;
    EXPECT_FALSE(want.ParseFromString(in));
    std::vector<storage::MutationView> muts = {{"before", "", false}};
    CommitRequestView got;
    EXPECT_FALSE(ParseCommitRequest(in, &got, &muts));
    EXPECT_EQ(muts.size(), 1u);
  }
}

TEST(CommitRoundTest, ARequestParsedInPlaceCanBeDroppedForTheNextRound) {
  CommitRound round;
  std::string a = Full("t", 1).SerializeAsString(), b = Full("t", 2).SerializeAsString();
  CommitRequestView va, vb;
  ASSERT_TRUE(ParseCommitRequest(a, &va, round.mutations()));
  ASSERT_TRUE(round.Accepts(va.generation, a.size()));
  round.Add(va, a.size());
  ASSERT_TRUE(ParseCommitRequest(b, &vb, round.mutations()));
  EXPECT_FALSE(round.Accepts(vb.generation, b.size()));
  round.DropParsed(vb);
  EXPECT_EQ(round.mutations()->size(), va.end);
  EXPECT_EQ(round.size(), 1u);
  EXPECT_EQ(round.tenant_id(), "t");
  round.Clear();
  EXPECT_TRUE(round.empty());
  EXPECT_TRUE(round.mutations()->empty());
}

}  // namespace
}  // namespace pgbranch::pageserver
