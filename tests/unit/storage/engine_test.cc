#include "pageserver/storage/engine.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/unit/storage/engine_test_util.h"

namespace pgbranch::storage {
namespace {

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = h_->CreateTenant("t1", "main");
    ASSERT_TRUE(t.ok()) << t.status();
    auto g = h_->AcquireWriter("t1", "main");
    ASSERT_TRUE(g.ok());
    gen_ = *g;
  }

  uint64_t Commit(const std::string& tl, uint64_t gen, std::vector<Mutation> m) {
    auto r = h_->Commit("t1", tl, gen, std::move(m));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->lsn : 0;
  }
  // "<absent>" for a missing key.
  std::string Get(const std::string& tl, const std::string& key, uint64_t lsn = 0) {
    auto r = h_->Read("t1", tl, lsn, {key});
    if (!r.ok()) return absl::StrCat("<error: ", r.status().ToString(), ">");
    return r->values[0].found ? r->values[0].data : "<absent>";
  }
  std::string Branch(const std::string& parent, const std::string& id, uint64_t lsn = 0) {
    CreateTimelineOptions o;
    o.tenant_id = "t1";
    o.timeline_id = id;
    o.ancestor_id = parent;
    o.ancestor_lsn = lsn;
    auto r = h_->CreateTimeline(o);
    EXPECT_TRUE(r.ok()) << r.status();
    return id;
  }

  EngineHarness h_;
  uint64_t gen_ = 0;
};

TEST_F(EngineTest, CommitThenReadAtEveryLsn) {
  uint64_t l1 = Commit("main", gen_, Put("a", "1"));
  uint64_t l2 = Commit("main", gen_, Put("a", "2"));
  uint64_t l3 = Commit("main", gen_, Del("a"));
  EXPECT_EQ(l1 + 1, l2);
  EXPECT_EQ(Get("main", "a", l1), "1");
  EXPECT_EQ(Get("main", "a", l2), "2");
  EXPECT_EQ(Get("main", "a", l3), "<absent>");
  EXPECT_EQ(Get("main", "a"), "<absent>");
}

TEST_F(EngineTest, BranchIsIsolatedFromParentAndSeesHistoryAtBranchPoint) {
  Commit("main", gen_, Put("customers", "100"));
  uint64_t bp = Commit("main", gen_, Put("orders", "200"));
  Branch("main", "dev");
  auto g = h_->AcquireWriter("t1", "dev");
  ASSERT_TRUE(g.ok());
  uint64_t dl = Commit("dev", *g, Put("customers", "101"));
  EXPECT_EQ(dl, bp + 1);  // a child's LSNs continue from its branch point
  Commit("main", gen_, Put("orders", "201"));
  EXPECT_EQ(Get("dev", "customers"), "101");
  EXPECT_EQ(Get("main", "customers"), "100");
  EXPECT_EQ(Get("dev", "orders"), "200");  // parent's later write invisible
  EXPECT_EQ(Get("main", "orders"), "201");
}

TEST_F(EngineTest, BranchAtPastLsnAndTimestamp) {
  uint64_t l1 = Commit("main", gen_, Put("k", "v1"));
  int64_t t1 = h_.clock().NowMicros();
  h_.clock().Advance(1'000'000);
  Commit("main", gen_, Put("k", "v2"));
  Branch("main", "at-lsn", l1);
  EXPECT_EQ(Get("at-lsn", "k"), "v1");

  CreateTimelineOptions o;
  o.tenant_id = "t1";
  o.timeline_id = "at-time";
  o.ancestor_id = "main";
  o.at_micros = t1 + 500'000;
  auto r = h_->CreateTimeline(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->ancestor_lsn, l1);
  EXPECT_EQ(Get("at-time", "k"), "v1");
  auto lsn = h_->LsnForTimestamp("t1", "main", t1 + 2'000'000);
  ASSERT_TRUE(lsn.ok());
  EXPECT_EQ(*lsn, l1 + 1);
  EXPECT_EQ(h_->LsnForTimestamp("t1", "main", t1 - 10'000'000).status().code(),
            absl::StatusCode::kOutOfRange);
}

TEST_F(EngineTest, StaleGenerationIsFenced) {
  auto g2 = h_->AcquireWriter("t1", "main");
  ASSERT_TRUE(g2.ok());
  auto r = h_->Commit("t1", "main", gen_, Put("a", "x"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Get("main", "a"), "<absent>");
  Commit("main", *g2, Put("a", "y"));
  EXPECT_EQ(Get("main", "a"), "y");
}

TEST_F(EngineTest, RejectsBadRequestsWithClearCodes) {
  EXPECT_EQ(h_->Read("nope", "main", 0, {"a"}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(h_->Read("t1", "nope", 0, {"a"}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(h_->Read("t1", "main", 99, {"a"}).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(h_->Commit("t1", "main", gen_, {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(h_->Commit("t1", "main", gen_, Put(std::string(5000, 'k'), "v")).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(h_->CreateTenant("t1").status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(h_->CreateTenant("bad id!").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(EngineTest, DeleteWithChildrenIsRefusedAndNamesThem) {
  Branch("main", "dev");
  absl::Status s = h_->DeleteTimeline("t1", "main");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("dev"), std::string::npos);
  ASSERT_TRUE(h_->DeleteTimeline("t1", "dev").ok());
  ASSERT_TRUE(h_->DeleteTimeline("t1", "main").ok());
}

TEST_F(EngineTest, ResetToParentHeadWithBackup) {
  Commit("main", gen_, Put("a", "1"));
  Branch("main", "dev");
  auto g = h_->AcquireWriter("t1", "dev");
  Commit("dev", *g, Put("a", "dev"));
  Commit("main", gen_, Put("a", "2"));
  auto r = h_->ResetTimeline("t1", "dev", "dev-backup");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Get("dev", "a"), "2");
  EXPECT_EQ(Get("dev-backup", "a"), "dev");
  // The old writer is fenced.
  EXPECT_FALSE(h_->Commit("t1", "dev", *g, Put("a", "x")).ok());
  h_.Crash();
  EXPECT_EQ(Get("dev", "a"), "2");
  EXPECT_EQ(Get("dev-backup", "a"), "dev");
  EXPECT_EQ(h_->ResetTimeline("t1", "main", "").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// Rewind (`branch restore`): the timeline keeps its id and goes back to an LSN of its own
// history; the old state moves to the backup, which adopts the children.
TEST_F(EngineTest, RewindKeepsTheIdAndMovesTheOldStateToTheBackup) {
  uint64_t l1 = Commit("main", gen_, Put("a", "1"));
  Branch("main", "rp");  // the restore point, at l1
  Commit("main", gen_, Put("a", "2"));
  Commit("main", gen_, Put("b", "new"));
  ASSERT_TRUE(h_->Checkpoint().ok());  // part of the old state in layer files
  Commit("main", gen_, Put("c", "mem"));
  auto r = h_->RewindTimeline("t1", "main", l1, "main-old");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->ancestor_lsn, l1);
  auto check = [&] {
    EXPECT_EQ(Get("main", "a"), "1");
    EXPECT_EQ(Get("main", "b"), "<absent>");
    EXPECT_EQ(Get("main", "c"), "<absent>");
    EXPECT_EQ(Get("main-old", "a"), "2");
    EXPECT_EQ(Get("main-old", "b"), "new");
    EXPECT_EQ(Get("main-old", "c"), "mem");
    EXPECT_EQ(Get("rp", "a"), "1");
    auto main = h_->GetTimeline("t1", "main");
    ASSERT_TRUE(main.ok());
    EXPECT_EQ(main->ancestor_id, "main-old");
    EXPECT_EQ(main->ancestor_lsn, l1);
    auto rp = h_->GetTimeline("t1", "rp");
    ASSERT_TRUE(rp.ok());
    EXPECT_EQ(rp->ancestor_id, "main-old");
    // The backup is the root now, so the old root cannot be deleted while it is referenced.
    EXPECT_EQ(h_->DeleteTimeline("t1", "main-old").code(), absl::StatusCode::kFailedPrecondition);
  };
  check();
  // The old writer is fenced; a new one writes on the rewound timeline only.
  EXPECT_FALSE(h_->Commit("t1", "main", gen_, Put("a", "x")).ok());
  auto g = h_->AcquireWriter("t1", "main");
  ASSERT_TRUE(g.ok());
  uint64_t l2 = Commit("main", *g, Put("d", "after"));
  EXPECT_GT(l2, l1);
  h_.Crash();
  check();
  EXPECT_EQ(Get("main", "d"), "after");
  ASSERT_TRUE(h_->Checkpoint().ok());
  h_.Crash();
  check();
  EXPECT_EQ(Get("main", "d"), "after");
  EXPECT_EQ(Get("main-old", "d"), "<absent>");
}

TEST_F(EngineTest, RewindRefusesBadRequestsAndAFailedOneChangesNothing) {
  uint64_t l1 = Commit("main", gen_, Put("a", "1"));
  Commit("main", gen_, Put("a", "2"));
  Branch("main", "dev");
  Branch("main", "taken");
  EXPECT_EQ(h_->RewindTimeline("t1", "main", l1, "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(h_->RewindTimeline("t1", "main", l1, "taken").status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(h_->RewindTimeline("t1", "main", 999, "b").status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(h_->RewindTimeline("t1", "nope", l1, "b").status().code(), absl::StatusCode::kNotFound);
  // A rewind whose log write fails (a crash before it is durable) leaves the old state.
  h_.env().SetSyncFailure(true);
  EXPECT_FALSE(h_->RewindTimeline("t1", "main", l1, "main-old").ok());
  h_.env().SetSyncFailure(false);
  h_.Crash();
  EXPECT_EQ(Get("main", "a"), "2");
  EXPECT_EQ(h_->GetTimeline("t1", "main-old").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(h_->GetTimeline("t1", "dev")->ancestor_id, "main");
  // A child can be rewound within its own history only (not below its branch point).
  auto g = h_->AcquireWriter("t1", "dev");
  ASSERT_TRUE(g.ok());
  uint64_t d1 = Commit("dev", *g, Put("a", "dev1"));
  Commit("dev", *g, Put("a", "dev2"));
  EXPECT_EQ(h_->RewindTimeline("t1", "dev", l1, "dev-old").status().code(),
            absl::StatusCode::kOutOfRange);
  ASSERT_TRUE(h_->RewindTimeline("t1", "dev", d1, "dev-old").ok());
  EXPECT_EQ(Get("dev", "a"), "dev1");
  EXPECT_EQ(Get("dev-old", "a"), "dev2");
  EXPECT_EQ(h_->GetTimeline("t1", "dev-old")->ancestor_id, "main");
}

TEST_F(EngineTest, AcknowledgedCommitsSurviveACrashAtEveryStage) {
  Commit("main", gen_, Put("a", "1"));
  ASSERT_TRUE(h_->Checkpoint().ok());
  Commit("main", gen_, Put("b", "2"));
  Branch("main", "dev");
  h_.Crash();
  EXPECT_EQ(Get("main", "a"), "1");
  EXPECT_EQ(Get("main", "b"), "2");
  EXPECT_EQ(Get("dev", "b"), "2");
  auto g = h_->AcquireWriter("t1", "main");
  ASSERT_TRUE(g.ok());
  EXPECT_GT(*g, gen_);  // generations never go back
  Commit("main", *g, Put("c", "3"));
  h_.Crash();
  EXPECT_EQ(Get("main", "c"), "3");
}

// Names of the log segment files (not the recycled ones).
std::vector<std::string> Segments(MemEnv& env) {
  std::vector<std::string> out;
  absl::StatusOr<std::vector<std::string>> names = env.GetChildren("/data/wal");
  if (!names.ok()) return out;
  for (const std::string& name : *names) {
    if (name.size() == 20 && name.substr(16) == ".log") out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The commit records are encoded by hand with checksums assembled from the values' own
// (FrameCommitRecord): replay after a crash reads back every kind of mutation -- values of several
// sizes, an empty value, deletions, several batches of one sequence -- across log segments (each
// record's checksum seeded for its own segment), with the same LSNs and logical size.
TEST_F(EngineTest, ReplayReadsBackEveryKindOfMutationAcrossSegments) {
  Commit("main", gen_, Put("gone", "soon"));
  std::string big(100000, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + i / 251);
  std::vector<std::vector<Mutation>> batches;
  for (int i = 0; i < 6; ++i) {  // 600 KB: several 64 KiB segments
    batches.push_back({Mutation{"big" + std::to_string(i), big, false},
                       Mutation{"small" + std::to_string(i), "v" + std::to_string(i), false},
                       Mutation{"empty" + std::to_string(i), "", false}});
  }
  batches.push_back(Del("gone"));
  // The first three one at a time (a group each: each rolls to a new segment), the rest as one
  // sequence.
  for (int i = 0; i < 3; ++i) Commit("main", gen_, batches[i]);
  batches.erase(batches.begin(), batches.begin() + 3);
  size_t segments = Segments(h_.env()).size();
  std::vector<CommitResult> results;
  ASSERT_TRUE(h_->CommitSequence("t1", "main", gen_, &batches, &results).ok());
  ASSERT_EQ(results.size(), 4u);
  EXPECT_GE(segments, 3u);
  auto before = h_->GetTimeline("t1", "main");
  ASSERT_TRUE(before.ok());
  h_.Crash();
  auto after = h_->GetTimeline("t1", "main");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->head_lsn, results.back().lsn);
  EXPECT_EQ(after->logical_size, before->logical_size);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(Get("main", "big" + std::to_string(i)), big) << i;
    EXPECT_EQ(Get("main", "small" + std::to_string(i)), "v" + std::to_string(i));
    EXPECT_EQ(Get("main", "empty" + std::to_string(i)), "");
  }
  EXPECT_EQ(Get("main", "gone"), "<absent>");
  EXPECT_EQ(Get("main", "gone", results[0].lsn - 1), "soon");
}

TEST_F(EngineTest, FullDiskFailsTheCommitAndLosesNothing) {
  Commit("main", gen_, Put("a", "1"));
  h_.env().SetSpaceBudget(10);
  // Larger than the zero-filled part of the log, so the log must grow into the full disk.
  auto r = h_->Commit("t1", "main", gen_, Put("b", std::string(200000, 'x')));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Get("main", "b"), "<absent>");
  h_.env().SetSpaceBudget(-1);
  uint64_t l = Commit("main", gen_, Put("c", "3"));
  EXPECT_EQ(l, 2u);  // the failed batch used no LSN
  h_.Crash();
  EXPECT_EQ(Get("main", "a"), "1");
  EXPECT_EQ(Get("main", "b"), "<absent>");
  EXPECT_EQ(Get("main", "c"), "3");
}

TEST_F(EngineTest, RecoveryEndsAtTheZeroFillOfAPreallocatedSegment) {
  Commit("main", gen_, Put("a", "1"));
  Commit("main", gen_, Put("b", std::string(3000, 'b')));
  // The segment is zero-filled ahead of its records: the records end well before the file.
  std::vector<std::string> segs = Segments(h_.env());
  ASSERT_FALSE(segs.empty());
  EXPECT_EQ(*h_.env().GetFileSize("/data/wal/" + segs.back()), 64u << 10);
  h_.Crash();
  EXPECT_EQ(Get("main", "a"), "1");
  EXPECT_EQ(Get("main", "b"), std::string(3000, 'b'));
  // Writing goes on after the recovered records, and a second recovery finds them all.
  uint64_t l = Commit("main", gen_, Put("c", "3"));
  EXPECT_EQ(l, 3u);
  h_.Crash();
  EXPECT_EQ(Get("main", "a"), "1");
  EXPECT_EQ(Get("main", "c"), "3");
  EXPECT_EQ(Commit("main", gen_, Put("d", "4")), 4u);
}

TEST_F(EngineTest, ACrashMidPreallocationLosesNothingAcknowledged) {
  // Fill the first segment (64 KiB zero-filled in this harness) so that a commit must roll into
  // a new one, whose zero-fill then runs out of disk part way.
  uint64_t last = 0;
  for (int i = 0; i < 12; ++i) {
    last = Commit("main", gen_, Put("k" + std::to_string(i), std::string(5000, 'a' + i)));
  }
  h_.env().SetSpaceBudget(20000);
  auto r = h_->Commit("t1", "main", gen_, Put("big", std::string(20000, 'x')));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  // And a power loss right then (with room again for the restart's own new segment): a half
  // zero-filled segment is at most a file without records.
  h_.env().SetSpaceBudget(-1);
  h_.Crash();
  for (int i = 0; i < 12; ++i) {
    EXPECT_EQ(Get("main", "k" + std::to_string(i)), std::string(5000, 'a' + i)) << i;
  }
  EXPECT_EQ(Get("main", "big"), "<absent>");
  EXPECT_EQ(Commit("main", gen_, Put("after", "1")), last + 1);

  // A crash that left the next segment partly zero-filled (its entry durable, the fill not
  // finished, nothing cleaned up) and a recycled file holding another segment's stale records:
  // both end the log at once, neither is read as data nor as corruption.
  std::vector<std::string> segs = Segments(h_.env());
  ASSERT_FALSE(segs.empty());
  uint64_t seq = std::stoull(segs.back().substr(0, 16), nullptr, 16);
  char name[32];
  snprintf(name, sizeof(name), "%016llx.log", static_cast<unsigned long long>(seq + 1));
  {
    auto f = h_.env().NewWritableFile(std::string("/data/wal/") + name);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Append(std::string(3000, '\0')).ok());
    ASSERT_TRUE((*f)->Sync().ok());
  }
  std::string stale = *ReadFileToString(&h_.env(), "/data/wal/" + segs.front());
  snprintf(name, sizeof(name), "%016llx.log", static_cast<unsigned long long>(seq + 2));
  {
    auto f = h_.env().NewWritableFile(std::string("/data/wal/") + name);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Append(stale).ok());
    ASSERT_TRUE((*f)->Sync().ok());
  }
  ASSERT_TRUE(h_.env().SyncDir("/data/wal").ok());
  h_.Crash();
  EXPECT_EQ(Get("main", "after"), "1");
  EXPECT_EQ(Get("main", "k0"), std::string(5000, 'a'));
  EXPECT_EQ(Commit("main", gen_, Put("later", "2")), last + 2);
  h_.Crash();
  EXPECT_EQ(Get("main", "later"), "2");
}

// Names of the retired segment files kept for reuse.
std::vector<std::string> Recycled(MemEnv& env) {
  std::vector<std::string> out;
  absl::StatusOr<std::vector<std::string>> names = env.GetChildren("/data/wal");
  if (!names.ok()) return out;
  for (const std::string& name : *names) {
    if (name.rfind("recycle-", 0) == 0) out.push_back(name);
  }
  return out;
}

TEST_F(EngineTest, ACheckpointKeepsItsRetiredSegmentsForReuse) {
  // Six segments' worth of log (64 KiB each in this harness), then a checkpoint retires them.
  std::vector<std::pair<std::string, std::string>> written;
  for (int i = 0; i < 72; ++i) {
    written.emplace_back("k" + std::to_string(i), std::string(5000, 'a' + i % 26));
    Commit("main", gen_, Put(written.back().first, written.back().second));
  }
  ASSERT_GE(Segments(h_.env()).size(), 5u);
  ASSERT_TRUE(h_->Checkpoint().ok());
  // All of them kept (more than the two of old): the next segments are these files, with no
  // zero-fill of a fresh one.
  size_t kept = Recycled(h_.env()).size();
  EXPECT_GE(kept, 4u);
  for (int i = 0; i < 36; ++i) {
    written.emplace_back("m" + std::to_string(i), std::string(5000, 'A' + i % 26));
    Commit("main", gen_, Put(written.back().first, written.back().second));
  }
  EXPECT_LT(Recycled(h_.env()).size(), kept);
  // A recycled file's stale records never surface: everything acknowledged, and only that, is
  // there after a power loss.
  h_.Crash();
  for (const auto& [k, v] : written) EXPECT_EQ(Get("main", k), v) << k;
  EXPECT_EQ(Get("main", "m36"), "<absent>");
}

// A new engine has no retired segment to reuse. Its spares -- the next segment and one
// zero-filled "recycle-" file behind it -- are made up front, so that neither the switch to the
// next segment nor the spare that follows it zero-fills anything while commits run; the next
// zero-fill of a waiting file waits until the log is idle.
TEST_F(EngineTest, LogSparesAreZeroFilledAheadOfNeedAndOnlyWhenIdle) {
  EXPECT_EQ(h_->Stats().log_zero_fills, 1u);     // the first segment, at the start
  h_.clock().Advance(Engine::kSpareIdleMicros);  // (the fixture's set-up logged records)
  auto owed = h_->PrepareLogSpares();
  ASSERT_TRUE(owed.ok()) << owed.status();
  EXPECT_FALSE(*owed);
  EXPECT_EQ(h_->Stats().log_zero_fills, 3u);
  EXPECT_EQ(Segments(h_.env()).size(), 2u);
  EXPECT_EQ(Recycled(h_.env()).size(), 1u);

  // Fill the first segment (64 KiB in this harness) and switch to the spare, with no idle time.
  std::vector<std::pair<std::string, std::string>> written;
  auto commit = [&](const std::string& key) {
    written.emplace_back(key, std::string(5000, 'a' + written.size() % 26));
    Commit("main", gen_, Put(written.back().first, written.back().second));
  };
  for (int i = 0; i < 14; ++i) commit("k" + std::to_string(i));
  ASSERT_EQ(Segments(h_.env()).size(), 2u);  // segment 1 full, 2 in use, no 3 yet
  // Busy: the next spare is the waiting file, renamed; the new zero-fill is owed, not done.
  owed = h_->PrepareLogSpares();
  ASSERT_TRUE(owed.ok()) << owed.status();
  EXPECT_TRUE(*owed);
  EXPECT_EQ(h_->Stats().log_zero_fills, 3u);
  EXPECT_EQ(Segments(h_.env()).size(), 3u);
  EXPECT_TRUE(Recycled(h_.env()).empty());
  // Idle for long enough: now it is done.
  h_.clock().Advance(Engine::kSpareIdleMicros);
  owed = h_->PrepareLogSpares();
  ASSERT_TRUE(owed.ok()) << owed.status();
  EXPECT_FALSE(*owed);
  EXPECT_EQ(h_->Stats().log_zero_fills, 4u);
  EXPECT_EQ(Recycled(h_.env()).size(), 1u);

  // Under steady load (no idle time) no waiting file is made: once the renamed one is used up,
  // the next segment is zero-filled after the switch, as without spare files.
  for (int i = 0; i < 13; ++i) commit("m" + std::to_string(i));
  owed = h_->PrepareLogSpares();  // segment 3 in use: the next one is the waiting file, renamed
  ASSERT_TRUE(owed.ok()) << owed.status();
  EXPECT_TRUE(*owed);
  EXPECT_EQ(h_->Stats().log_zero_fills, 4u);
  for (int i = 0; i < 13; ++i) commit("n" + std::to_string(i));
  ASSERT_EQ(Segments(h_.env()).size(), 4u);  // segment 4 in use, no 5 yet
  owed = h_->PrepareLogSpares();
  ASSERT_TRUE(owed.ok()) << owed.status();
  EXPECT_TRUE(*owed);
  EXPECT_EQ(h_->Stats().log_zero_fills, 5u);
  EXPECT_EQ(Segments(h_.env()).size(), 5u);
  EXPECT_TRUE(Recycled(h_.env()).empty());

  // A power loss with spares on disk, and a spare file whose zero-fill it interrupted (holding
  // another segment's records): only what was acknowledged comes back, and the leftover goes.
  std::string stale = *ReadFileToString(&h_.env(), "/data/wal/" + Segments(h_.env()).front());
  {
    auto f = h_.env().NewWritableFile("/data/wal/spare.tmp");
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Append(stale).ok());
    ASSERT_TRUE((*f)->Sync().ok());
  }
  ASSERT_TRUE(h_.env().SyncDir("/data/wal").ok());
  h_.Crash();
  for (const auto& [k, v] : written) EXPECT_EQ(Get("main", k), v) << k;
  EXPECT_FALSE(h_.env().FileExists("/data/wal/spare.tmp"));
  commit("after");
  h_.Crash();
  EXPECT_EQ(Get("main", "after"), written.back().second);
}

// The waiting spare file is an optimisation: failing to zero-fill it (a full disk) is no
// error, so the background pass goes on to the checkpoint that frees space.
TEST_F(EngineTest, ASpareFileThatDoesNotFitIsNoError) {
  h_.clock().Advance(Engine::kSpareIdleMicros);
  h_.env().SetSpaceBudget((64 << 10) + 4096);  // room for the next segment only
  auto owed = h_->PrepareLogSpares();
  ASSERT_TRUE(owed.ok()) << owed.status();
  EXPECT_FALSE(*owed);
  EXPECT_EQ(Segments(h_.env()).size(), 2u);
  EXPECT_TRUE(Recycled(h_.env()).empty());
  EXPECT_FALSE(h_.env().FileExists("/data/wal/spare.tmp"));
  h_.env().SetSpaceBudget(-1);
  Commit("main", gen_, Put("a", "1"));
  ASSERT_TRUE(h_->Checkpoint().ok());
  h_.Crash();
  EXPECT_EQ(Get("main", "a"), "1");
}

TEST_F(EngineTest, FailedSyncRefusesWritesUntilRestart) {
  Commit("main", gen_, Put("a", "1"));
  h_.env().SetSyncFailure(true);
  EXPECT_FALSE(h_->Commit("t1", "main", gen_, Put("b", "2")).ok());
  h_.env().SetSyncFailure(false);
  auto r = h_->Commit("t1", "main", gen_, Put("c", "3"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Get("main", "a"), "1");  // reads still work
  h_.Crash();
  EXPECT_EQ(Get("main", "a"), "1");
  EXPECT_EQ(Get("main", "b"), "<absent>");
  Commit("main", gen_, Put("d", "4"));
}

// A commit group is written with one WriteAtV; one that fails part way (its first records whole
// on disk, the rest torn) fails every commit of the group, and its records are cut back so that
// neither the next, shorter group nor a recovery ever finds them. The commits by reference
// (views into the caller's bytes) log and apply the same commits as Mutation values.
TEST_F(EngineTest, AGroupWriteThatFailsPartWayLeavesNothingToReplay) {
  uint64_t l0 = Commit("main", gen_, Put("a", "0"));
  std::string big(3000, 'B');
  std::string c_value(200, '3');
  std::string frame = "a1" + big + "c" + c_value;  // the caller's bytes, viewed
  std::string_view f(frame);
  std::vector<MutationView> views = {{f.substr(0, 1), f.substr(1, 1), false},
                                     {"b", f.substr(2, big.size()), false},
                                     {"c", f.substr(2 + big.size() + 1), false}};
  std::vector<size_t> ends = {1, 2, 3};
  std::vector<CommitResult> results;
  // The first two records (< 3150 bytes) whole, the third torn; one fault.
  h_.env().SetWriteBudget(3150);
  absl::Status s = h_->CommitSequence("t1", "main", gen_, views, &ends, &results);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(results.empty());
  EXPECT_EQ(Get("main", "b"), "<absent>");
  // A shorter group over the cut: the failed group's records after it must not come back.
  EXPECT_EQ(Commit("main", gen_, Put("d", "4")), l0 + 1);
  h_.Crash();
  EXPECT_EQ(Get("main", "a"), "0");
  EXPECT_EQ(Get("main", "b"), "<absent>");
  EXPECT_EQ(Get("main", "c"), "<absent>");
  EXPECT_EQ(Get("main", "d"), "4");
  // By reference, after the failure: the same commits, logged and replayed.
  ends = {1, 2, 3};
  ASSERT_TRUE(h_->CommitSequence("t1", "main", gen_, views, &ends, &results).ok());
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].lsn, l0 + 2);
  h_.Crash();
  EXPECT_EQ(Get("main", "a"), "1");
  EXPECT_EQ(Get("main", "b"), big);
  EXPECT_EQ(Get("main", "c"), c_value);
  EXPECT_EQ(Get("main", "b", l0 + 2), "<absent>");
}

TEST_F(EngineTest, CommitSequenceGivesEachBatchItsLsnInOneLogWrite) {
  uint64_t l0 = Commit("main", gen_, Put("a", "0"));
  uint64_t groups = h_->Stats().commit_groups;
  std::vector<std::vector<Mutation>> batches = {Put("a", "1"), Put("b", "2"), Del("a")};
  std::vector<CommitResult> results;
  ASSERT_TRUE(h_->CommitSequence("t1", "main", gen_, &batches, &results).ok());
  ASSERT_EQ(results.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(results[i].lsn, l0 + 1 + i);
  EXPECT_EQ(h_->Stats().commit_groups, groups + 1);  // one log write and fdatasync
  EXPECT_EQ(Get("main", "a", l0 + 1), "1");
  EXPECT_EQ(Get("main", "b", l0 + 1), "<absent>");  // each LSN is its own state
  EXPECT_EQ(Get("main", "b", l0 + 2), "2");
  EXPECT_EQ(Get("main", "a"), "<absent>");
  h_.Crash();
  EXPECT_EQ(Get("main", "a", l0 + 1), "1");
  EXPECT_EQ(Get("main", "b"), "2");
}

TEST_F(EngineTest, CommitSequenceStopsAtTheFirstFailure) {
  uint64_t l0 = Commit("main", gen_, Put("x", "0"));
  // An invalid batch in the middle: the ones before it are committed, nothing after it.
  std::vector<std::vector<Mutation>> batches = {Put("a", "1"), Put("", "bad"), Put("c", "3")};
  std::vector<CommitResult> results;
  absl::Status s = h_->CommitSequence("t1", "main", gen_, &batches, &results);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].lsn, l0 + 1);
  EXPECT_EQ(Get("main", "a"), "1");
  EXPECT_EQ(Get("main", "c"), "<absent>");
  // A fenced generation: none of them.
  auto g = h_->AcquireWriter("t1", "main");
  ASSERT_TRUE(g.ok());
  batches = {Put("d", "4"), Put("e", "5")};
  s = h_->CommitSequence("t1", "main", gen_, &batches, &results);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(results.empty());
  EXPECT_EQ(Get("main", "d"), "<absent>");
}

TEST_F(EngineTest, CorruptLayerIsReportedNeverServed) {
  Commit("main", gen_, Put("a", std::string(100, 'v')));
  ASSERT_TRUE(h_->Checkpoint().ok());
  auto names = h_.env().GetChildren("/data/layers");
  ASSERT_TRUE(names.ok());
  ASSERT_EQ(names->size(), 1u);
  ASSERT_TRUE(h_.env().CorruptByte("/data/layers/" + (*names)[0], 5).ok());
  h_.Crash();
  auto r = h_->Read("t1", "main", 0, {"a"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
}

TEST_F(EngineTest, ScanMergesAncestryAndHidesDeletions) {
  Commit("main", gen_,
         {{"d/a", "1", false}, {"d/b", "2", false}, {"d/c", "3", false}, {"e/x", "9", false}});
  Branch("main", "dev");
  auto g = h_->AcquireWriter("t1", "dev");
  Commit("dev", *g, {{"d/b", "", true}, {"d/bb", "22", false}});
  auto r = h_->Scan("t1", "dev", 0, "d/", "d0", 0);
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<std::string> keys;
  for (auto& e : r->entries) keys.push_back(e.key + "=" + e.value);
  EXPECT_EQ(keys, (std::vector<std::string>{"d/a=1", "d/bb=22", "d/c=3"}));
  auto page = h_->Scan("t1", "dev", 0, "d/", "d0", 2);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->entries.size(), 2u);
  EXPECT_TRUE(page->more);
}

TEST_F(EngineTest, KeysOnlyScanListsTheSameKeysWithoutValues) {
  Commit("main", gen_, {{"p/1", std::string(8192, 'x'), false}, {"p/2", "y", false}});
  Branch("main", "dev");
  auto g = h_->AcquireWriter("t1", "dev");
  Commit("dev", *g, {{"p/1", "", true}, {"p/3", "z", false}});
  auto r = h_->Scan("t1", "dev", 0, "p/", "p0", 0, /*keys_only=*/true);
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<std::string> keys;
  for (auto& e : r->entries) keys.push_back(e.key + "=" + e.value);
  EXPECT_EQ(keys, (std::vector<std::string>{"p/2=", "p/3="}));
}

TEST_F(EngineTest, SizesTrackLogicalAndDivergedBytes) {
  Commit("main", gen_, {{"a", std::string(1000, 'x'), false}, {"b", std::string(500, 'y'), false}});
  Branch("main", "dev");
  auto g = h_->AcquireWriter("t1", "dev");
  Commit("dev", *g, {{"a", std::string(200, 'z'), false}});
  auto main = h_->GetTimeline("t1", "main");
  auto dev = h_->GetTimeline("t1", "dev");
  EXPECT_EQ(main->logical_size, 1500);
  EXPECT_EQ(dev->logical_size, 700);
  EXPECT_EQ(dev->diverged_bytes, 200u);
  EXPECT_EQ(dev->ancestor_id, "main");
}

TEST_F(EngineTest, GcHonoursRetentionAndBranchPoints) {
  uint64_t l1 = Commit("main", gen_, Put("k", "old"));
  Branch("main", "pinned", l1);
  h_.clock().Advance(7200LL * 1'000'000);  // past the 1 h window
  uint64_t l2 = Commit("main", gen_, Put("k", "new"));
  ASSERT_TRUE(h_->RunGc().ok());
  auto info = h_->GetTimeline("t1", "main");
  EXPECT_EQ(info->oldest_readable_lsn, l1);  // l1 is the newest commit older than the window
  h_.clock().Advance(7200LL * 1'000'000);
  Commit("main", gen_, Put("other", "x"));
  ASSERT_TRUE(h_->RunGc().ok());
  info = h_->GetTimeline("t1", "main");
  EXPECT_GT(info->oldest_readable_lsn, l1);
  EXPECT_EQ(h_->Read("t1", "main", l1, {"k"}).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(Get("pinned", "k"), "old");  // the branch point keeps its version
  EXPECT_EQ(Get("main", "k", l2), "new");
  h_.Crash();
  EXPECT_EQ(Get("pinned", "k"), "old");
  // Deleting the branch frees the version only it needed.
  ASSERT_TRUE(h_->DeleteTimeline("t1", "pinned").ok());
  ASSERT_TRUE(h_->RunGc().ok());
  EXPECT_EQ(h_->GetTimeline("t1", "main")->diverged_bytes, 3u + 1u);  // "new" + "x"
}

TEST_F(EngineTest, GcByBytesKeepsTheNewestHistory) {
  ASSERT_TRUE(h_->SetRetention("t1", "main", {0, 3 * 1001}).ok());
  std::vector<uint64_t> lsns;
  for (int i = 0; i < 10; ++i)
    lsns.push_back(Commit("main", gen_, Put("k", std::string(1000, 'a' + i))));
  ASSERT_TRUE(h_->RunGc().ok());
  auto info = h_->GetTimeline("t1", "main");
  EXPECT_EQ(info->oldest_readable_lsn, lsns[6]);
  EXPECT_EQ(Get("main", "k", lsns[6]), std::string(1000, 'g'));
}

TEST_F(EngineTest, LeaseKeepsAnLsnReadable) {
  uint64_t l1 = Commit("main", gen_, Put("k", "v1"));
  ASSERT_TRUE(h_->AddLease("t1", "main", l1, 3 * 3600).ok());
  h_.clock().Advance(7200LL * 1'000'000);
  Commit("main", gen_, Put("k", "v2"));
  ASSERT_TRUE(h_->RunGc().ok());
  EXPECT_EQ(Get("main", "k", l1), "v1");
  h_.clock().Advance(7200LL * 1'000'000);
  Commit("main", gen_, Put("k", "v3"));
  ASSERT_TRUE(h_->RunGc().ok());
  EXPECT_EQ(h_->Read("t1", "main", l1, {"k"}).status().code(), absl::StatusCode::kOutOfRange);
}

TEST_F(EngineTest, CompactionKeepsEveryReadableVersion) {
  for (int round = 0; round < 6; ++round) {
    for (int i = 0; i < 20; ++i) {
      Commit("main", gen_, Put(absl::StrCat("k", i), absl::StrCat("r", round, "-", i)));
    }
    ASSERT_TRUE(h_->Checkpoint().ok());
  }
  auto info = h_->GetTimeline("t1", "main");
  // Compaction bounds the file count: at most 3 after a compaction, plus the last flush.
  EXPECT_LE(info->layer_files, 4u);
  EXPECT_GT(h_->Stats().compactions, 0u);
  EXPECT_EQ(Get("main", "k7"), "r5-7");
  EXPECT_EQ(Get("main", "k7", 8), "r0-7");
  h_.Crash();
  EXPECT_EQ(Get("main", "k7", 8), "r0-7");
}

TEST_F(EngineTest, DeepBranchChainReadsThroughAncestry) {
  Commit("main", gen_, Put("root", "r"));
  std::string parent = "main";
  for (int i = 0; i < 50; ++i) {
    std::string id = absl::StrCat("b", i);
    Branch(parent, id);
    auto g = h_->AcquireWriter("t1", id);
    Commit(id, *g, Put(absl::StrCat("k", i), id));
    parent = id;
  }
  EXPECT_EQ(Get("b49", "root"), "r");
  EXPECT_EQ(Get("b49", "k0"), "b0");
  EXPECT_EQ(Get("b10", "k11"), "<absent>");
  h_.Crash();
  EXPECT_EQ(Get("b49", "root"), "r");
}

TEST_F(EngineTest, TimelineIdsAreScopedToTheirTenant) {
  Commit("main", gen_, Put("k", "t1"));
  ASSERT_TRUE(h_->CreateTenant("t2", "main").ok());
  auto g = h_->AcquireWriter("t2", "main");
  ASSERT_TRUE(h_->Commit("t2", "main", *g, Put("k", "t2")).ok());
  h_.Crash();
  EXPECT_EQ(Get("main", "k"), "t1");
  auto r = h_->Read("t2", "main", 0, {"k"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->values[0].data, "t2");
  ASSERT_TRUE(h_->DeleteTenant("t2").ok());
  EXPECT_EQ(Get("main", "k"), "t1");
}

TEST_F(EngineTest, DeleteTenantRemovesEverything) {
  Branch("main", "dev");
  ASSERT_TRUE(h_->DeleteTenant("t1").ok());
  EXPECT_TRUE(h_->ListTenants().empty());
  h_.Crash();
  EXPECT_TRUE(h_->ListTenants().empty());
}

}  // namespace
}  // namespace pgbranch::storage
