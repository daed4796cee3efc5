// CommitRound's bounds: one generation, at most kMaxRequests, at most kMaxBytes unless alone.
#include "pageserver/server/commit_round.h"

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

}  // namespace
}  // namespace pgbranch::pageserver
