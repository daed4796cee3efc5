// Pipelined commits: CommitPipeline itself, and pagefs over a FakePageStore whose commits can be
// held (issued, not yet applied), released in order, or lost (a broken stream).
#include <dirent.h>
#include <fcntl.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "gtest/gtest.h"
#include "pageserver/pagefs/commit_pipeline.h"
#include "pageserver/pagefs/pagefs.h"
#include "tests/unit/pagefs/fake_page_store.h"

namespace pgbranch::pagefs {
namespace {

constexpr uint64_t kRoot = fs::kRootIno;

// True if `f` has not finished after a moment: it is blocked (a liveness check, not a timing
// one: a wrongly unblocked call finishes at once and fails it).
template <typename T>
bool StillBlocked(std::future<T>& f) {
  return f.wait_for(std::chrono::milliseconds(150)) == std::future_status::timeout;
}

std::vector<PageMutation> Put(const std::string& key, const std::string& value) {
  return {{key, value, false}};
}

TEST(CommitPipelineTest, NumbersInOrderAndWaitsForAcknowledgement) {
  CommitPipeline p;
  std::vector<uint64_t> sent;
  auto send = [&](uint64_t seq) {
    sent.push_back(seq);
    return absl::OkStatus();
  };
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(p.Issue(Put("k", "v"), send).ok());
  EXPECT_EQ(sent, (std::vector<uint64_t>{1, 2, 3}));
  auto wait2 = std::async(std::launch::async, [&] { return p.WaitDurable(2); });
  EXPECT_TRUE(StillBlocked(wait2));
  p.Ack();
  EXPECT_TRUE(StillBlocked(wait2));
  p.Ack();
  EXPECT_TRUE(wait2.get().ok());
  EXPECT_EQ(p.acknowledged(), 2u);
  auto sync = std::async(std::launch::async, [&] { return p.Sync(); });
  EXPECT_TRUE(StillBlocked(sync));
  p.Ack();
  EXPECT_TRUE(sync.get().ok());
}

TEST(CommitPipelineTest, OnDurableRunsOnceItsCommitIsAcknowledgedOrThePipelineIsPoisoned) {
  CommitPipeline p;
  auto send = [](uint64_t) { return absl::OkStatus(); };
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(p.Issue(Put("k", "v"), send).ok());
  std::vector<std::string> ran;
  auto record = [&](std::string name) {
    return [&ran, name](const absl::Status& s) {
      ran.push_back(s.ok() ? name : name + ": " + std::string(s.message()));
    };
  };
  p.OnDurable(2, record("2"));
  p.OnDurable(0, record("all"));  // 0: the last issued, 3
  p.Ack();
  EXPECT_TRUE(ran.empty());
  p.Ack();  // acknowledges 2, on this thread
  EXPECT_EQ(ran, (std::vector<std::string>{"2"}));
  p.OnDurable(1, record("1 at once"));
  EXPECT_EQ(ran, (std::vector<std::string>{"2", "1 at once"}));
  p.Ack();
  EXPECT_EQ(ran, (std::vector<std::string>{"2", "1 at once", "all"}));

  // A poison runs the callbacks waiting with its error, once; later ones run at once with it.
  ASSERT_TRUE(p.Issue(Put("k", "v"), send).ok());
  ASSERT_TRUE(p.Issue(Put("k", "v"), send).ok());
  p.OnDurable(4, record("4"));
  p.OnDurable(5, record("5"));
  p.Poison(absl::UnavailableError("stream broke"));
  EXPECT_EQ(ran, (std::vector<std::string>{"2", "1 at once", "all", "4: stream broke",
                                           "5: stream broke"}));
  p.Poison(absl::InternalError("second"));  // the first error stays; nothing runs again
  p.Ack();                                  // even an answer that arrives after the poison
  EXPECT_EQ(ran.size(), 5u);
  p.OnDurable(4, record("4 late"));
  p.OnDurable(1, record("1 late"));  // acknowledged, but the pipeline is poisoned
  EXPECT_EQ(ran.back(), "1 late: stream broke");
  EXPECT_EQ(ran.size(), 7u);
  EXPECT_FALSE(p.WaitDurable(4).ok());
}

// OnDurable callbacks have no waiting thread to see the ack timeout pass: their owner calls
// PoisonIfOverdue periodically.
TEST(CommitPipelineTest, PoisonIfOverdueFailsTheCallbacksOfAnUnansweredCommit) {
  auto send = [](uint64_t) { return absl::OkStatus(); };
  CommitPipeline::Limits patient;
  patient.ack_timeout = std::chrono::hours(1);
  CommitPipeline p(patient);
  ASSERT_TRUE(p.Issue(Put("a", "1"), send).ok());
  std::vector<absl::Status> got;
  p.OnDurable(1, [&](const absl::Status& s) { got.push_back(s); });
  p.PoisonIfOverdue();  // not overdue
  EXPECT_TRUE(got.empty());
  EXPECT_TRUE(p.poison().ok());

  CommitPipeline::Limits limits;
  limits.ack_timeout = std::chrono::milliseconds(1);
  CommitPipeline q(limits);
  q.PoisonIfOverdue();  // nothing in flight
  EXPECT_TRUE(q.poison().ok());
  ASSERT_TRUE(q.Issue(Put("a", "1"), send).ok());
  q.OnDurable(1, [&](const absl::Status& s) { got.push_back(s); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // past the timeout, whatever load
  q.PoisonIfOverdue();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].code(), absl::StatusCode::kDeadlineExceeded) << got[0];
  EXPECT_EQ(q.Sync().code(), absl::StatusCode::kDeadlineExceeded);
  q.PoisonIfOverdue();
  EXPECT_EQ(got.size(), 1u);
}

TEST(CommitPipelineTest, ReadsWaitOnlyForCommitsThatTouchWhatTheyRead) {
  CommitPipeline p;
  auto send = [](uint64_t) { return absl::OkStatus(); };
  ASSERT_TRUE(p.Issue(Put("b", "1"), send).ok());
  EXPECT_TRUE(p.BeforeRead({"a", "c"}).ok());  // untouched: no wait
  EXPECT_TRUE(p.BeforeScan("c", "z").ok());
  auto read = std::async(std::launch::async, [&] { return p.BeforeRead({"a", "b"}); });
  auto scan = std::async(std::launch::async, [&] { return p.BeforeScan("a", "c"); });
  auto open_scan = std::async(std::launch::async, [&] { return p.BeforeScan("a", ""); });
  EXPECT_TRUE(StillBlocked(read));
  EXPECT_TRUE(StillBlocked(scan));
  EXPECT_TRUE(StillBlocked(open_scan));
  p.Ack();
  EXPECT_TRUE(read.get().ok());
  EXPECT_TRUE(scan.get().ok());
  EXPECT_TRUE(open_scan.get().ok());
}

TEST(CommitPipelineTest, ReadsWaitForTheLastCommitThatTouchesThemNotForLaterOnes) {
  CommitPipeline p;
  auto send = [](uint64_t) { return absl::OkStatus(); };
  ASSERT_EQ(*p.Issue(Put("a", "1"), send), 1u);
  ASSERT_EQ(*p.Issue(Put("b", "1"), send), 2u);  // in flight behind "a"
  auto read_a = std::async(std::launch::async, [&] { return p.BeforeRead({"a"}); });
  auto scan_a = std::async(std::launch::async, [&] { return p.BeforeScan("a", "b"); });
  EXPECT_TRUE(StillBlocked(read_a));
  EXPECT_TRUE(StillBlocked(scan_a));
  p.Ack();  // 1: every commit that touches "a"; "b"'s is still in flight
  EXPECT_TRUE(read_a.get().ok());
  EXPECT_TRUE(scan_a.get().ok());
  EXPECT_EQ(p.acknowledged(), 1u);

  // A key touched by two in-flight commits waits for the later one, even when an earlier
  // commit touching it was acknowledged meanwhile.
  ASSERT_EQ(*p.Issue(Put("a", "2"), send), 3u);
  ASSERT_EQ(*p.Issue(Put("c", "1"), send), 4u);
  auto read_ab = std::async(std::launch::async, [&] { return p.BeforeRead({"b", "a"}); });
  auto scan_all = std::async(std::launch::async, [&] { return p.BeforeScan("a", ""); });
  auto scan_b = std::async(std::launch::async, [&] { return p.BeforeScan("b", "c"); });
  p.Ack();  // 2 ("b")
  EXPECT_TRUE(scan_b.get().ok());
  EXPECT_TRUE(StillBlocked(read_ab));  // "a" waits for 3
  p.Ack();                             // 3
  EXPECT_TRUE(read_ab.get().ok());
  EXPECT_TRUE(StillBlocked(scan_all));         // "c" waits for 4
  EXPECT_TRUE(p.BeforeRead({"a", "b"}).ok());  // nothing touching them in flight any more
  p.Ack();
  EXPECT_TRUE(scan_all.get().ok());

  // A poison fails a waiting read whatever it waits for.
  ASSERT_EQ(*p.Issue(Put("a", "3"), send), 5u);
  auto read_poisoned = std::async(std::launch::async, [&] { return p.BeforeRead({"a"}); });
  EXPECT_TRUE(StillBlocked(read_poisoned));
  p.Poison(absl::UnavailableError("stream broke"));
  EXPECT_TRUE(absl::IsUnavailable(read_poisoned.get()));
}

TEST(CommitPipelineTest, LastPendingNamesTheLastUnacknowledgedCommitThatTouchesTheKeys) {
  CommitPipeline p;
  auto send = [](uint64_t) { return absl::OkStatus(); };
  EXPECT_EQ(*p.LastPending({"a"}), 0u);
  ASSERT_TRUE(p.Issue(Put("a", "1"), send).ok());  // 1
  ASSERT_TRUE(p.Issue(Put("b", "1"), send).ok());  // 2
  ASSERT_TRUE(p.Issue(Put("a", "2"), send).ok());  // 3
  ASSERT_TRUE(p.Issue(Put("c", "1"), send).ok());  // 4
  EXPECT_EQ(*p.LastPending({"a"}), 3u);
  EXPECT_EQ(*p.LastPending({"b"}), 2u);
  EXPECT_EQ(*p.LastPending({"b", "c"}), 4u);
  EXPECT_EQ(*p.LastPending({"z"}), 0u);
  p.Ack();
  p.Ack();
  p.Ack();
  EXPECT_EQ(*p.LastPending({"a"}), 0u);
  EXPECT_EQ(*p.LastPending({"c"}), 4u);
  p.Poison(absl::UnavailableError("lost"));
  EXPECT_TRUE(absl::IsUnavailable(p.LastPending({"z"}).status()));
}

TEST(CommitPipelineTest, PoisonFailsEverythingAfterIt) {
  CommitPipeline p;
  auto send = [](uint64_t) { return absl::OkStatus(); };
  ASSERT_TRUE(p.Issue(Put("a", "1"), send).ok());
  p.Ack();
  ASSERT_TRUE(p.Issue(Put("b", "1"), send).ok());
  auto wait = std::async(std::launch::async, [&] { return p.WaitDurable(2); });
  EXPECT_TRUE(StillBlocked(wait));
  p.Poison(absl::UnavailableError("stream broke"));
  EXPECT_TRUE(absl::IsUnavailable(wait.get()));
  // Every later wait, issue and head read fails with the first error, even for what was acked.
  EXPECT_TRUE(absl::IsUnavailable(p.WaitDurable(1)));
  EXPECT_TRUE(absl::IsUnavailable(p.Sync()));
  EXPECT_TRUE(absl::IsUnavailable(p.Issue(Put("c", "1"), send).status()));
  EXPECT_TRUE(absl::IsUnavailable(p.BeforeRead({"zzz"})));
  p.Poison(absl::FailedPreconditionError("later"));
  EXPECT_TRUE(absl::IsUnavailable(p.poison()));
  // A failed send poisons too.
  CommitPipeline q;
  EXPECT_FALSE(q.Issue(Put("a", "1"), [](uint64_t) { return absl::InternalError("x"); }).ok());
  EXPECT_TRUE(absl::IsInternal(q.Sync()));
}

TEST(CommitPipelineTest, BackpressureBoundsCountAndBytes) {
  CommitPipeline p({/*max_bytes=*/1000, /*max_commits=*/2});
  auto send = [](uint64_t) { return absl::OkStatus(); };
  ASSERT_TRUE(p.Issue(Put("a", "1"), send).ok());
  ASSERT_TRUE(p.Issue(Put("b", "1"), send).ok());
  auto third = std::async(std::launch::async, [&] { return p.Issue(Put("c", "1"), send); });
  EXPECT_TRUE(StillBlocked(third));  // two in flight: the count limit
  p.Ack();
  EXPECT_EQ(*third.get(), 3u);
  p.Ack();
  p.Ack();
  // A commit larger than max_bytes is admitted alone; the next waits for it.
  ASSERT_TRUE(p.Issue(Put("big", std::string(5000, 'x')), send).ok());
  auto small = std::async(std::launch::async, [&] { return p.Issue(Put("d", "1"), send); });
  EXPECT_TRUE(StillBlocked(small));
  p.Ack();
  EXPECT_TRUE(small.get().ok());
}

// A pageserver that never answers: waiters fail once the oldest commit passes ack_timeout,
// instead of blocking fsync forever; the pipeline stays poisoned.
TEST(CommitPipelineTest, AnUnansweredCommitPoisonsAfterTheAckTimeout) {
  CommitPipeline::Limits limits;
  limits.ack_timeout = std::chrono::milliseconds(200);
  CommitPipeline p(limits);
  auto send = [](uint64_t) { return absl::OkStatus(); };
  ASSERT_TRUE(p.Issue(Put("a", "1"), send).ok());
  absl::Status s = p.Sync();
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_EQ(p.Issue(Put("b", "1"), send).status().code(), absl::StatusCode::kDeadlineExceeded);
  p.Ack();  // a late answer does not unpoison
  EXPECT_EQ(p.Sync().code(), absl::StatusCode::kDeadlineExceeded);
}

class PageFsPipelineTest : public ::testing::Test {
 protected:
  void SetUp() override { Mount(); }
  void Mount() {
    fs_ = std::make_unique<PageFs>(&store_, PageFsOptions{}, &clock_);
    ASSERT_TRUE(fs_->Mount().ok());
  }
  // A crash of pagefs: nothing is flushed, held commits are lost.
  void CrashAndMount() {
    if (store_.held() > 0) store_.DropHeld();
    fs_.reset();
    Mount();
  }
  int Create(const std::string& name, uint64_t* ino = nullptr) {
    fs::InodeAttr attr;
    uint64_t i = 0;
    int err = fs_->Create(kRoot, name, 0644, O_RDWR | O_CREAT | O_EXCL, 0, 0, &attr, &i);
    if (ino) *ino = i;
    return err;
  }
  uint64_t Lookup(const std::string& name) {
    fs::InodeAttr attr;
    uint64_t ino = 0;
    return fs_->Lookup(kRoot, name, &attr, &ino) == 0 ? ino : 0;
  }
  // The first 100 bytes of `name` (after a crash: what the store kept).
  void ReadBack(const std::string& name, std::string* data) {
    uint64_t ino = Lookup(name);
    ASSERT_NE(ino, 0u);
    ASSERT_EQ(fs_->Open(ino, O_RDONLY), 0);
    ASSERT_EQ(fs_->Read(ino, 0, 100, data), 0);
  }

  // The errnos of the fsync replies left for later (PageFs::kReplyLater), in the order they ran.
  PageFs::FsyncReply Record() {
    return [this](int err) {
      std::lock_guard<std::mutex> lock(replies_mu_);
      replies_.push_back(err);
    };
  }
  std::vector<int> replies() {
    std::lock_guard<std::mutex> lock(replies_mu_);
    return replies_;
  }

  FakePageStore store_;
  FakeClock clock_;
  std::mutex replies_mu_;
  std::vector<int> replies_;  // guarded by replies_mu_; outlives fs_
  std::unique_ptr<PageFs> fs_;
};

TEST_F(PageFsPipelineTest, NamespaceChangesReturnBeforeTheyAreDurableAndFsyncDirWaits) {
  store_.HoldCommits(true);
  uint64_t head = store_.head();
  uint64_t ino;
  ASSERT_EQ(Create("a", &ino), 0);
  ASSERT_EQ(fs_->Release(ino), 0);
  fs::InodeAttr dattr;
  uint64_t dino;
  ASSERT_EQ(fs_->Mkdir(kRoot, "d", 0755, 0, 0, &dattr, &dino), 0);
  ASSERT_EQ(fs_->Rename(kRoot, "a", kRoot, "b", 0), 0);
  EXPECT_EQ(store_.head(), head);  // issued, none applied yet
  EXPECT_EQ(store_.held(), 3u);
  EXPECT_NE(Lookup("b"), 0u);  // the mount sees its own changes
  auto fsyncdir = std::async(std::launch::async, [&] { return fs_->FsyncDir(kRoot); });
  EXPECT_TRUE(StillBlocked(fsyncdir));
  EXPECT_EQ(store_.ReleaseHeld(), 3u);
  EXPECT_EQ(fsyncdir.get(), 0);
  EXPECT_EQ(store_.head(), head + 3);
  CrashAndMount();
  EXPECT_EQ(Lookup("a"), 0u);
  EXPECT_NE(Lookup("b"), 0u);
  EXPECT_NE(Lookup("d"), 0u);
}

TEST_F(PageFsPipelineTest, NamespaceChangesAreSentInTheBackgroundAndFsyncFlushesAtOnce) {
  uint64_t f;
  uint64_t async = store_.async_commits(), background = store_.background_commits();
  ASSERT_EQ(Create("f", &f), 0);
  fs::InodeAttr in, out;
  in.size = 0;
  ASSERT_EQ(fs_->Rename(kRoot, "f", kRoot, "g", 0), 0);
  ASSERT_EQ(fs_->SetAttr(f, PageFs::kSetSize, in, &out), 0);
  // Nobody waits for these before the next fsync: none is sent on the caller's thread.
  EXPECT_EQ(store_.async_commits() - async, 3u);
  EXPECT_EQ(store_.background_commits() - background, 3u);
  // An fsync's own flush is about to be waited for: it may be sent at once.
  ASSERT_EQ(fs_->Write(f, 0, "data", false), 0);
  ASSERT_EQ(fs_->Fsync(f), 0);
  EXPECT_EQ(store_.async_commits() - async, 4u);
  EXPECT_EQ(store_.background_commits() - background, 3u);
  ASSERT_EQ(fs_->Unlink(kRoot, "g"), 0);
  EXPECT_EQ(store_.background_commits() - background, 4u);
}

TEST_F(PageFsPipelineTest, ListingADirectoryThisMountKnowsWholeWaitsForNoCommit) {
  fs::InodeAttr attr;
  uint64_t d, sub;
  ASSERT_EQ(fs_->Mkdir(kRoot, "d", 0755, 0, 0, &attr, &d), 0);
  ASSERT_EQ(fs_->Mkdir(d, "sub", 0755, 0, 0, &attr, &sub), 0);
  ASSERT_EQ(fs_->Create(d, "b", 0644, O_RDWR | O_CREAT | O_EXCL, 0, 0, &attr, &sub), 0);
  ASSERT_EQ(fs_->Create(d, "a", 0644, O_RDWR | O_CREAT | O_EXCL, 0, 0, &attr, &sub), 0);
  store_.HoldCommits(true);
  ASSERT_EQ(fs_->Rename(d, "b", d, "c", 0), 0);  // in flight
  uint64_t scans = store_.scans();
  auto listing = std::async(std::launch::async, [&] {
    std::vector<DirListing> out;
    int err = fs_->ReadDir(d, &out);
    std::string names;
    for (const DirListing& e : out) names += e.name + (e.dtype == DT_DIR ? "/ " : " ");
    return err == 0 ? names : std::string("error");
  });
  ASSERT_EQ(listing.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_EQ(listing.get(), "./ ../ a c sub/ ");
  EXPECT_EQ(store_.scans(), scans);
  store_.ReleaseHeld();
  store_.HoldCommits(false);
  // A fresh mount lists the same from the store.
  ASSERT_EQ(fs_->FsyncDir(kRoot), 0);
  CrashAndMount();
  fs::InodeAttr dattr;
  uint64_t dino;
  ASSERT_EQ(fs_->Lookup(kRoot, "d", &dattr, &dino), 0);
  std::vector<DirListing> out;
  ASSERT_EQ(fs_->ReadDir(dino, &out), 0);
  std::string names;
  for (const DirListing& e : out) names += e.name + (e.dtype == DT_DIR ? "/ " : " ");
  EXPECT_EQ(names, "./ ../ a c sub/ ");
}

// PostgreSQL's start opens each database directory several times: only the first opendir of a
// directory this mount did not create scans the store; later ones, and lookups of names it does
// not hold, are answered from memory, with this mount's own changes in them.
TEST_F(PageFsPipelineTest, ADirectoryListedOnceIsListedFromMemoryWithLaterChanges) {
  fs::InodeAttr attr;
  uint64_t d, f;
  ASSERT_EQ(fs_->Mkdir(kRoot, "d", 0755, 0, 0, &attr, &d), 0);
  for (const char* name : {"a", "b", "x"}) {
    ASSERT_EQ(fs_->Create(d, name, 0644, O_RDWR | O_CREAT | O_EXCL, 0, 0, &attr, &f), 0);
  }
  ASSERT_EQ(fs_->FsyncDir(d), 0);
  CrashAndMount();  // a mount that knows nothing of d
  ASSERT_EQ(fs_->Lookup(kRoot, "d", &attr, &d), 0);
  auto names = [&] {
    std::vector<DirListing> out;
    if (fs_->ReadDir(d, &out) != 0) return std::string("error");
    std::string s;
    for (const DirListing& e : out) s += e.name + (e.dtype == DT_DIR ? "/ " : " ");
    return s;
  };
  const uint64_t scans = store_.scans();
  EXPECT_EQ(names(), "./ ../ a b x ");
  EXPECT_EQ(store_.scans(), scans + 1);
  ASSERT_EQ(fs_->Create(d, "c", 0644, O_RDWR | O_CREAT | O_EXCL, 0, 0, &attr, &f), 0);
  ASSERT_EQ(fs_->Unlink(d, "a"), 0);
  ASSERT_EQ(fs_->Rename(d, "b", d, "e", 0), 0);
  ASSERT_EQ(fs_->Rename(d, "x", kRoot, "moved", 0), 0);
  EXPECT_EQ(names(), "./ ../ c e ");
  EXPECT_EQ(names(), "./ ../ c e ");
  const uint64_t reads = store_.reads();
  uint64_t missing = 0;
  EXPECT_EQ(fs_->Lookup(d, "no-such-name", &attr, &missing), ENOENT);
  EXPECT_EQ(fs_->Lookup(d, "a", &attr, &missing), ENOENT);
  EXPECT_EQ(store_.reads(), reads);
  EXPECT_EQ(store_.scans(), scans + 1);
  // What the store holds is the same listing.
  ASSERT_EQ(fs_->FsyncDir(d), 0);
  ASSERT_EQ(fs_->FsyncDir(kRoot), 0);
  CrashAndMount();
  ASSERT_EQ(fs_->Lookup(kRoot, "d", &attr, &d), 0);
  EXPECT_EQ(names(), "./ ../ c e ");
}

TEST_F(PageFsPipelineTest, FsyncWaitsForItsFlushAndEverythingIssuedBeforeIt) {
  uint64_t f;
  ASSERT_EQ(Create("f", &f), 0);
  store_.HoldCommits(true);
  ASSERT_EQ(Create("g"), 0);  // issued before the fsync of f: the fsync must cover it
  ASSERT_EQ(fs_->Write(f, 0, "data", false), 0);
  auto fsync = std::async(std::launch::async, [&] { return fs_->Fsync(f); });
  EXPECT_TRUE(StillBlocked(fsync));
  EXPECT_EQ(store_.ReleaseHeld(1), 1u);  // only the create of g
  EXPECT_TRUE(StillBlocked(fsync));
  EXPECT_EQ(store_.ReleaseHeld(), 1u);  // the flush of f
  EXPECT_EQ(fsync.get(), 0);
  // Nothing dirty: an fsync waits only for the in-flight commits of its own file, and the create
  // of h is none of them (FsyncWithNothingBufferedWaitsOnlyForItsFilesLastCommit).
  ASSERT_EQ(Create("h"), 0);
  auto fsync2 = std::async(std::launch::async, [&] { return fs_->Fsync(f); });
  ASSERT_EQ(fsync2.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_EQ(fsync2.get(), 0);
  // An O_DSYNC write waits for its flush and everything issued before it, h's create included.
  auto dsync = std::async(std::launch::async, [&] { return fs_->Write(f, 0, "x", true); });
  EXPECT_TRUE(StillBlocked(dsync));
  EXPECT_EQ(store_.ReleaseHeld(1), 1u);  // the create of h
  EXPECT_TRUE(StillBlocked(dsync));
  store_.ReleaseHeld();
  EXPECT_EQ(dsync.get(), 0);
  store_.HoldCommits(false);
  CrashAndMount();
  std::string data;
  ASSERT_NO_FATAL_FAILURE(ReadBack("f", &data));
  EXPECT_EQ(data, "xata");
  EXPECT_NE(Lookup("h"), 0u);
}

TEST_F(PageFsPipelineTest, FsyncWithNothingBufferedWaitsOnlyForItsFilesLastCommit) {
  uint64_t f;
  ASSERT_EQ(Create("f", &f), 0);
  ASSERT_EQ(fs_->Write(f, 0, "data", false), 0);
  ASSERT_EQ(fs_->Fsync(f), 0);
  store_.HoldCommits(true);
  // Nothing of f in flight: at once, whatever else is (the caller replies; `reply` never runs).
  ASSERT_EQ(Create("g"), 0);
  auto clean = std::async(std::launch::async, [&] { return fs_->Fsync(f, Record()); });
  ASSERT_EQ(clean.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_EQ(clean.get(), 0);
  EXPECT_TRUE(replies().empty());
  // A chmod of f behind the create of g, and a create after it: the fsync waits for the chmod
  // (and so for g), not for h.
  fs::InodeAttr in, out;
  in.mode = 0600;
  ASSERT_EQ(fs_->SetAttr(f, PageFs::kSetMode, in, &out), 0);
  ASSERT_EQ(Create("h"), 0);
  ASSERT_EQ(fs_->Fsync(f, Record()), PageFs::kReplyLater);
  EXPECT_EQ(store_.ReleaseHeld(1), 1u);  // g
  EXPECT_TRUE(replies().empty());
  EXPECT_EQ(store_.ReleaseHeld(1), 1u);  // the chmod
  EXPECT_EQ(replies(), std::vector<int>{0});
  EXPECT_EQ(store_.held(), 1u);  // h, still in flight
  // A crash now leaves a prefix of the issued commits holding what the fsync acknowledged: g and
  // the chmod, without h (as a local disk could, that had not written h's entry yet).
  CrashAndMount();
  EXPECT_NE(Lookup("g"), 0u);
  EXPECT_EQ(Lookup("h"), 0u);
  fs::InodeAttr attr;
  ASSERT_EQ(fs_->GetAttr(Lookup("f"), &attr), 0);
  EXPECT_EQ(attr.mode & 07777, 0600u);
  // A poisoned store fails it, with nothing of f in flight.
  uint64_t f2 = Lookup("f");
  store_.HoldCommits(true);
  ASSERT_EQ(Create("k"), 0);
  store_.DropHeld();
  EXPECT_EQ(fs_->Fsync(f2), EIO);
  store_.HoldCommits(false);
}

// An fsync that must wait for its commit returns at once (its FUSE thread serves the next
// request) and is answered exactly once, by the thread that learns the outcome.
TEST_F(PageFsPipelineTest, FsyncRepliesLaterOnceItsFlushAndEverythingBeforeItAreDurable) {
  uint64_t f;
  ASSERT_EQ(Create("f", &f), 0);
  store_.HoldCommits(true);
  ASSERT_EQ(Create("g"), 0);  // a namespace commit issued before the fsync of f
  ASSERT_EQ(fs_->Write(f, 0, "data", false), 0);
  ASSERT_EQ(fs_->Fsync(f, Record()), PageFs::kReplyLater);  // this thread did not wait
  EXPECT_EQ(store_.held(), 2u);
  EXPECT_TRUE(replies().empty());
  EXPECT_EQ(store_.ReleaseHeld(1), 1u);  // the create of g: not yet the flush of f
  EXPECT_TRUE(replies().empty());
  EXPECT_EQ(store_.ReleaseHeld(), 1u);  // the flush: replied on the acknowledging thread
  EXPECT_EQ(replies(), std::vector<int>{0});
  // Exactly once: later commits and a second fsync do not answer it again.
  ASSERT_EQ(Create("h"), 0);
  EXPECT_EQ(store_.ReleaseHeld(), 1u);
  EXPECT_EQ(fs_->Fsync(f, Record()), 0);  // nothing of f in flight: at once, by the caller
  EXPECT_EQ(replies(), std::vector<int>{0});
  store_.HoldCommits(false);
  CrashAndMount();
  std::string data;
  ASSERT_NO_FATAL_FAILURE(ReadBack("f", &data));
  EXPECT_EQ(data, "data");
  EXPECT_NE(Lookup("g"), 0u);
}

// A fsync with nothing of its own buffered still waits for the namespace commits in flight that
// wrote its inode, and for everything issued before them.
TEST_F(PageFsPipelineTest, FsyncReplyLaterWaitsForEarlierPipelinedNamespaceCommits) {
  store_.HoldCommits(true);
  ASSERT_EQ(Create("x"), 0);  // before the file's own create
  uint64_t f;
  ASSERT_EQ(Create("f", &f), 0);
  ASSERT_EQ(fs_->Rename(kRoot, "f", kRoot, "f2", 0), 0);  // writes f's inode (its ctime)
  ASSERT_EQ(fs_->Fsync(f, Record()), PageFs::kReplyLater);
  EXPECT_EQ(store_.ReleaseHeld(1), 1u);  // x
  EXPECT_TRUE(replies().empty());
  EXPECT_EQ(store_.ReleaseHeld(1), 1u);  // the create of f
  EXPECT_TRUE(replies().empty());
  EXPECT_EQ(store_.ReleaseHeld(), 1u);  // the rename
  EXPECT_EQ(replies(), std::vector<int>{0});
  store_.HoldCommits(false);
}

// A lost commit answers the fsync that waits for it with EIO, once; from then on every fsync
// gets EIO at once (the store is poisoned), and its `reply` never runs.
TEST_F(PageFsPipelineTest, ALostFlushRepliesEioOnceAndAPoisonedStoreAnswersEioAtOnce) {
  uint64_t f;
  ASSERT_EQ(Create("f", &f), 0);
  ASSERT_EQ(fs_->Fsync(f), 0);
  store_.HoldCommits(true);
  ASSERT_EQ(fs_->Write(f, 0, "data", false), 0);
  ASSERT_EQ(fs_->Fsync(f, Record()), PageFs::kReplyLater);
  ASSERT_EQ(fs_->Fsync(f, Record()), PageFs::kReplyLater);  // nothing buffered: waits for it too
  EXPECT_TRUE(replies().empty());
  store_.DropHeld();  // the stream broke
  EXPECT_EQ(replies(), (std::vector<int>{EIO, EIO}));
  // Poisoned: with data buffered (the flush's issue fails) and without.
  ASSERT_EQ(fs_->Write(f, 0, "more", false), EIO);
  EXPECT_EQ(fs_->Fsync(f, Record()), EIO);
  EXPECT_EQ(replies(), (std::vector<int>{EIO, EIO}));
  store_.HoldCommits(false);
}

// A failed commit (the pageserver's error answer) poisons the store and fails the fsync.
TEST_F(PageFsPipelineTest, AFailedCommitRepliesEioToTheFsyncWaitingForIt) {
  uint64_t f;
  ASSERT_EQ(Create("f", &f), 0);
  ASSERT_EQ(fs_->Fsync(f), 0);
  store_.HoldCommits(true);
  ASSERT_EQ(fs_->Write(f, 0, "data", false), 0);
  ASSERT_EQ(fs_->Fsync(f, Record()), PageFs::kReplyLater);
  store_.set_fail_commits(true);
  EXPECT_EQ(store_.ReleaseHeld(), 0u);  // the flush fails when applied: the pipeline is poisoned
  EXPECT_EQ(replies(), std::vector<int>{EIO});
  store_.set_fail_commits(false);
  EXPECT_EQ(fs_->Fsync(f), EIO);  // the poison stays until a new mount
  EXPECT_EQ(fs_->FsyncDir(kRoot), EIO);
  EXPECT_EQ(replies(), std::vector<int>{EIO});
  store_.HoldCommits(false);
}

// At unmount, FlushAll returns only once the fsyncs left for later are answered (main then ends
// the FUSE session); the destructor answers any left with EIO, and nothing of the PageFs runs
// after it, though the store acknowledges the commit later.
TEST_F(PageFsPipelineTest, UnmountAnswersTheFsyncsLeftForLaterBeforeThePageFsGoes) {
  uint64_t f;
  ASSERT_EQ(Create("f", &f), 0);
  ASSERT_EQ(fs_->Fsync(f), 0);
  store_.HoldCommits(true);
  ASSERT_EQ(fs_->Write(f, 0, "data", false), 0);
  ASSERT_EQ(fs_->Fsync(f, Record()), PageFs::kReplyLater);
  auto flush = std::async(std::launch::async, [&] { return fs_->FlushAll(); });
  EXPECT_TRUE(StillBlocked(flush));
  store_.ReleaseHeld();
  EXPECT_TRUE(flush.get().ok());
  EXPECT_EQ(replies(), std::vector<int>{0});  // answered before FlushAll returned

  // Destroyed with an fsync waiting: answered EIO by the destructor, then never again.
  ASSERT_EQ(fs_->Write(f, 0, "more", false), 0);
  ASSERT_EQ(fs_->Fsync(f, Record()), PageFs::kReplyLater);
  fs_.reset();
  EXPECT_EQ(replies(), (std::vector<int>{0, EIO}));
  EXPECT_EQ(store_.ReleaseHeld(), 1u);  // acknowledged after the PageFs is gone
  EXPECT_EQ(replies(), (std::vector<int>{0, EIO}));
  store_.HoldCommits(false);
  Mount();
}

// The ack timeout of an fsync answered later: the background flusher sees it pass.
TEST_F(PageFsPipelineTest, AnFsyncLeftForLaterFailsOnceTheAckTimeoutPasses) {
  CommitPipeline::Limits limits;
  limits.ack_timeout = std::chrono::milliseconds(1);
  store_.set_pipeline_limits(limits);
  Mount();  // a new writer: its pipeline has the limits
  fs_->StartBackgroundFlusher();
  uint64_t f;
  ASSERT_EQ(Create("f", &f), 0);
  store_.HoldCommits(true);
  std::promise<int> replied;
  ASSERT_EQ(fs_->Write(f, 0, "data", false), 0);
  ASSERT_EQ(fs_->Fsync(f, [&](int err) { replied.set_value(err); }), PageFs::kReplyLater);
  EXPECT_EQ(replied.get_future().get(), EIO);  // no commit is ever acknowledged
  EXPECT_EQ(fs_->Fsync(f), EIO);
  store_.HoldCommits(false);
}

TEST_F(PageFsPipelineTest, ReadsAtTheHeadSeeIssuedCommits) {
  // No page cache and a tiny dirty limit: every write is issued at once, and reads go to the
  // store.
  PageFsOptions options;
  options.cache_bytes = 0;
  options.dirty_limit_bytes = 1;
  fs_ = std::make_unique<PageFs>(&store_, options, &clock_);
  ASSERT_TRUE(fs_->Mount().ok());
  uint64_t f;
  ASSERT_EQ(Create("f", &f), 0);
  ASSERT_EQ(fs_->Write(f, 0, "aaaa", false), 0);
  ASSERT_EQ(fs_->Fsync(f), 0);
  store_.HoldCommits(true);
  ASSERT_EQ(fs_->Write(f, 0, "bb", false), 0);  // over the limit: issued, held
  ASSERT_EQ(store_.held(), 1u);
  auto read = std::async(std::launch::async, [&] {
    std::string data;
    int err = fs_->Read(f, 0, 4, &data);
    return err == 0 ? data : std::string("error");
  });
  EXPECT_TRUE(StillBlocked(read));
  // A read of what no held commit touches does not wait.
  auto other = store_.Read(0, {fs::DirEntryKey(kRoot, "nothing")});
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE((*other)[0].has_value());
  store_.ReleaseHeld();
  EXPECT_EQ(read.get(), "bbaa");
  // A name created and not yet applied: the store's head read waits for it.
  ASSERT_EQ(Create("g"), 0);
  auto lookup =
      std::async(std::launch::async, [&] { return store_.Read(0, {fs::DirEntryKey(kRoot, "g")}); });
  EXPECT_TRUE(StillBlocked(lookup));
  store_.ReleaseHeld();
  auto found = lookup.get();
  ASSERT_TRUE(found.ok());
  EXPECT_TRUE((*found)[0].has_value());
}

TEST_F(PageFsPipelineTest, ACrashLeavesAPrefixOfTheIssuedChanges) {
  store_.HoldCommits(true);
  ASSERT_EQ(Create("a"), 0);
  ASSERT_EQ(Create("b"), 0);
  ASSERT_EQ(fs_->Unlink(kRoot, "a"), 0);
  ASSERT_EQ(Create("c"), 0);
  EXPECT_EQ(store_.ReleaseHeld(2), 2u);  // the creates of a and b
  CrashAndMount();                       // the unlink of a and the create of c are lost
  EXPECT_NE(Lookup("a"), 0u);
  EXPECT_NE(Lookup("b"), 0u);
  EXPECT_EQ(Lookup("c"), 0u);
}

TEST_F(PageFsPipelineTest, ALostCommitPoisonsEveryLaterWriteAndFsync) {
  uint64_t f;
  ASSERT_EQ(Create("f", &f), 0);
  ASSERT_EQ(fs_->FsyncDir(kRoot), 0);
  store_.HoldCommits(true);
  ASSERT_EQ(Create("lost"), 0);
  ASSERT_EQ(fs_->Write(f, 0, "x", false), 0);
  auto fsync = std::async(std::launch::async, [&] { return fs_->Fsync(f); });
  EXPECT_TRUE(StillBlocked(fsync));
  store_.DropHeld();  // the stream broke: never a silent success
  EXPECT_EQ(fsync.get(), EIO);
  EXPECT_EQ(fs_->Fsync(f), EIO);
  EXPECT_EQ(fs_->FsyncDir(kRoot), EIO);
  EXPECT_EQ(fs_->Write(f, 0, "y", false), EIO);
  EXPECT_EQ(Create("after"), EIO);
  EXPECT_EQ(fs_->Unlink(kRoot, "f"), EIO);
  EXPECT_FALSE(fs_->FlushAll().ok());
  CrashAndMount();
  EXPECT_NE(Lookup("f"), 0u);
  EXPECT_EQ(Lookup("lost"), 0u);
  EXPECT_EQ(Lookup("after"), 0u);
}

TEST_F(PageFsPipelineTest, FencingDiscoveredAfterTheIssueGivesEio) {
  store_.HoldCommits(true);
  ASSERT_EQ(Create("a"), 0);
  store_.FenceInPlace();  // another mount took the timeline
  EXPECT_EQ(store_.ReleaseHeld(), 0u);
  EXPECT_EQ(fs_->FsyncDir(kRoot), EIO);
  EXPECT_TRUE(fs_->Stats().fenced);
  EXPECT_EQ(Create("b"), EIO);
}

TEST_F(PageFsPipelineTest, SmallTruncateAndUnlinkDeleteByPageNumberWithoutAScan) {
  uint64_t f;
  ASSERT_EQ(Create("f", &f), 0);
  ASSERT_EQ(fs_->Write(f, 0, std::string(3 * fs::kPageSize, 'p'), false), 0);
  ASSERT_EQ(fs_->Fsync(f), 0);
  ASSERT_EQ(fs_->Release(f), 0);
  uint64_t scans = store_.scans();
  fs::InodeAttr in, out;
  in.size = 0;
  ASSERT_EQ(fs_->SetAttr(f, PageFs::kSetSize, in, &out), 0);
  EXPECT_EQ(store_.CountLive(fs::PageKey(f, 0), fs::PageKey(f, 1000)), 0u);
  ASSERT_EQ(fs_->Write(f, 0, std::string(2 * fs::kPageSize, 'q'), false), 0);
  ASSERT_EQ(fs_->Fsync(f), 0);
  ASSERT_EQ(fs_->Unlink(kRoot, "f"), 0);
  EXPECT_EQ(store_.scans(), scans);
  EXPECT_EQ(store_.CountLive(fs::PageKey(f, 0), fs::PageKey(f, 1000)), 0u);
}

TEST_F(PageFsPipelineTest, ALargeFlushIssuesCommitsAsBuiltAndLeavesItsFileUsable) {
  // One commit in flight at a time: the flush of 10 MiB (three commits, the last with the
  // attributes) waits for room after its first.
  store_.set_pipeline_limits({/*max_bytes=*/1ull << 30, /*max_commits=*/1});
  Mount();
  uint64_t f;
  ASSERT_EQ(Create("f", &f), 0);
  ASSERT_EQ(fs_->FsyncDir(kRoot), 0);
  const size_t size = 10 << 20;
  ASSERT_EQ(fs_->Write(f, 0, std::string(size, 'x'), false), 0);
  store_.HoldCommits(true);
  auto fsync = std::async(std::launch::async, [&] { return fs_->Fsync(f); });
  while (store_.held() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_TRUE(StillBlocked(fsync));
  EXPECT_EQ(store_.held(), 1u);
  // The flush holds no lock of the file while it waits: writes and reads go on, and a read
  // returns the newest bytes (written during the flush, in the held commit, or not yet issued).
  ASSERT_EQ(fs_->Write(f, 0, "new", false), 0);
  std::string data;
  ASSERT_EQ(fs_->Read(f, 0, 5, &data), 0);
  EXPECT_EQ(data, "newxx");
  ASSERT_EQ(fs_->Read(f, size - 4, 4, &data), 0);
  EXPECT_EQ(data, "xxxx");
  size_t released = 0;
  while (fsync.wait_for(std::chrono::milliseconds(5)) != std::future_status::ready) {
    released += store_.ReleaseHeld();
  }
  EXPECT_EQ(fsync.get(), 0);
  EXPECT_EQ(released, 3u);
  store_.HoldCommits(false);
  // Served from the clean cache the flush filled, then after a crash from the store.
  ASSERT_EQ(fs_->Read(f, size - 4, 4, &data), 0);
  EXPECT_EQ(data, "xxxx");
  ASSERT_EQ(fs_->Fsync(f), 0);
  CrashAndMount();
  fs::InodeAttr attr;
  ASSERT_EQ(fs_->GetAttr(f, &attr), 0);
  EXPECT_EQ(attr.size, size);
  ASSERT_EQ(fs_->Read(f, 0, size, &data), 0);
  EXPECT_EQ(data, "new" + std::string(size - 3, 'x'));
}

TEST_F(PageFsPipelineTest, ACloseDoesNotWaitForAFlushInFlightOfAFileThatStaysLinked) {
  // One commit in flight at a time: a flush of 10 MiB stays running (issuing) while held.
  store_.set_pipeline_limits({/*max_bytes=*/1ull << 30, /*max_commits=*/1});
  Mount();
  uint64_t f;
  ASSERT_EQ(Create("f", &f), 0);
  ASSERT_EQ(fs_->Open(f, O_RDWR), 0);  // two opens
  ASSERT_EQ(fs_->FsyncDir(kRoot), 0);
  ASSERT_EQ(fs_->Write(f, 0, std::string(10 << 20, 'x'), false), 0);
  store_.HoldCommits(true);
  auto fsync = std::async(std::launch::async, [&] { return fs_->Fsync(f); });
  while (store_.held() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_TRUE(StillBlocked(fsync));
  // Neither close deletes anything: both return while the flush is still being issued, and so
  // does a lookup behind them (the namespace lock is not held across the flush).
  auto closes = std::async(std::launch::async, [&] {
    int a = fs_->Release(f);
    int b = fs_->Release(f);
    return a == 0 && b == 0 && Lookup("f") == f;
  });
  ASSERT_EQ(closes.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_TRUE(closes.get());
  EXPECT_TRUE(StillBlocked(fsync));
  while (fsync.wait_for(std::chrono::milliseconds(5)) != std::future_status::ready) {
    store_.ReleaseHeld();
  }
  EXPECT_EQ(fsync.get(), 0);
  store_.HoldCommits(false);
  fs::InodeAttr attr;
  ASSERT_EQ(fs_->GetAttr(f, &attr), 0);
  EXPECT_EQ(attr.size, 10u << 20);
}

TEST_F(PageFsPipelineTest, BackpressureBoundsTheCommitsInFlight) {
  store_.set_pipeline_limits({/*max_bytes=*/1ull << 30, /*max_commits=*/2});
  Mount();
  store_.HoldCommits(true);
  ASSERT_EQ(Create("a"), 0);
  ASSERT_EQ(Create("b"), 0);
  auto third = std::async(std::launch::async, [&] { return Create("c"); });
  EXPECT_TRUE(StillBlocked(third));
  EXPECT_EQ(store_.ReleaseHeld(1), 1u);
  EXPECT_EQ(third.get(), 0);
  store_.HoldCommits(false);
  store_.ReleaseHeld();
  EXPECT_EQ(fs_->FsyncDir(kRoot), 0);
  EXPECT_NE(Lookup("c"), 0u);
}

// A WAL file's WRITE (fuse_bridge: wal_commit_at_write) issues its commit before it returns; the
// fdatasync that follows issues nothing more and returns only once that commit is durable.
TEST_F(PageFsPipelineTest, AWriteIssuedAtOnceIsWhatItsFdatasyncWaitsFor) {
  uint64_t f;
  ASSERT_EQ(Create("wal", &f), 0);
  ASSERT_EQ(fs_->Fsync(f), 0);
  store_.HoldCommits(true);
  uint64_t async = store_.async_commits();
  ASSERT_EQ(fs_->Write(f, 0, "record", false, /*issue=*/true), 0);  // returns before durable
  EXPECT_EQ(store_.async_commits() - async, 1u);
  EXPECT_EQ(store_.held(), 1u);
  // The kernel's SETATTR with the file times comes between the WRITE and the FSYNC.
  fs::InodeAttr in, out;
  in.mtime_ns = in.ctime_ns = 1234;
  ASSERT_EQ(fs_->SetAttr(f, PageFs::kSetMtime | PageFs::kSetCtime, in, &out), 0);
  ASSERT_EQ(fs_->Fsync(f, Record(), /*datasync=*/true), PageFs::kReplyLater);
  EXPECT_EQ(store_.async_commits() - async, 1u);  // nothing more: the times wait
  EXPECT_TRUE(replies().empty());
  EXPECT_EQ(store_.ReleaseHeld(), 1u);
  EXPECT_EQ(replies(), std::vector<int>{0});
  store_.HoldCommits(false);
  CrashAndMount();
  std::string data;
  ASSERT_NO_FATAL_FAILURE(ReadBack("wal", &data));
  EXPECT_EQ(data, "record");
}

// fdatasync commits the data and the size, never only the times; fsync commits the times too.
// Times left by an fdatasync go with the file's next flush.
TEST_F(PageFsPipelineTest, FdatasyncLeavesTheTimesAloneForTheNextFlush) {
  uint64_t f;
  ASSERT_EQ(Create("f", &f), 0);
  ASSERT_EQ(fs_->Write(f, 0, "data", false), 0);
  ASSERT_EQ(fs_->Fsync(f, nullptr, /*datasync=*/true), 0);
  fs::InodeAttr in, out;
  in.mtime_ns = in.ctime_ns = 1234;
  ASSERT_EQ(fs_->SetAttr(f, PageFs::kSetMtime | PageFs::kSetCtime, in, &out), 0);
  uint64_t async = store_.async_commits();
  ASSERT_EQ(fs_->Fsync(f, nullptr, /*datasync=*/true), 0);
  EXPECT_EQ(store_.async_commits(), async);
  // A size change alone (fallocate) is what reading the data back needs: committed.
  ASSERT_EQ(fs_->Fallocate(f, 0, 0, 3 * 8192), 0);
  ASSERT_EQ(fs_->Fsync(f, nullptr, /*datasync=*/true), 0);
  EXPECT_EQ(store_.async_commits(), async + 1);
  CrashAndMount();
  fs::InodeAttr attr;
  ASSERT_EQ(fs_->GetAttr(Lookup("f"), &attr), 0);
  EXPECT_EQ(attr.size, 3u * 8192);
  EXPECT_EQ(attr.mtime_ns, 1234);  // carried by the size's commit
  // fsync commits times alone.
  f = Lookup("f");
  in.mtime_ns = in.ctime_ns = 5678;
  ASSERT_EQ(fs_->SetAttr(f, PageFs::kSetMtime | PageFs::kSetCtime, in, &out), 0);
  ASSERT_EQ(fs_->Fsync(f, nullptr, /*datasync=*/true), 0);
  ASSERT_EQ(fs_->Fsync(f), 0);
  CrashAndMount();
  ASSERT_EQ(fs_->GetAttr(Lookup("f"), &attr), 0);
  EXPECT_EQ(attr.mtime_ns, 5678);
}

// Zero-filling a file this mount created (PostgreSQL's new WAL segment: 16 MiB of zeros, then
// fsync) commits its size and no page: a zero page where no page was ever issued is a hole
// already. A crash in the middle leaves a prefix: the file at a size it had, reading zeros.
TEST_F(PageFsPipelineTest, ZeroFillingANewFileCommitsItsSizeAndNoPage) {
  uint64_t f;
  ASSERT_EQ(Create("seg", &f), 0);
  const std::string zeros(16 * 8192, '\0');
  store_.ResetMaxCommitKeys();
  store_.HoldCommits(true);
  ASSERT_EQ(fs_->Write(f, 0, zeros, false, /*issue=*/true), 0);
  ASSERT_EQ(fs_->Write(f, zeros.size(), zeros, false, /*issue=*/true), 0);
  EXPECT_EQ(store_.held(), 2u);
  EXPECT_EQ(store_.ReleaseHeld(1), 1u);     // the first half's size, not the second's
  EXPECT_EQ(store_.max_commit_keys(), 1u);  // the inode alone, no page key
  CrashAndMount();
  fs::InodeAttr attr;
  f = Lookup("seg");
  ASSERT_EQ(fs_->GetAttr(f, &attr), 0);
  EXPECT_EQ(attr.size, zeros.size());
  ASSERT_EQ(fs_->Open(f, O_RDWR), 0);
  std::string data;
  ASSERT_EQ(fs_->Read(f, 8192, 100, &data), 0);
  EXPECT_EQ(data, std::string(100, '\0'));
  EXPECT_EQ(store_.CountLive(fs::PageKey(f, 0), fs::PageKey(f + 1, 0)), 0u);
  // Data, then zeros over it: the zeros delete the stored page (it was issued).
  ASSERT_EQ(fs_->Write(f, 8192, "data", false), 0);
  ASSERT_EQ(fs_->Fsync(f), 0);
  EXPECT_EQ(store_.CountLive(fs::PageKey(f, 0), fs::PageKey(f + 1, 0)), 1u);
  // (An inode loaded from the store: its bound is unknown, every zero page is a deletion.)
  ASSERT_EQ(fs_->Write(f, 8192, std::string(8192, '\0'), false), 0);
  ASSERT_EQ(fs_->Fsync(f), 0);
  EXPECT_EQ(store_.CountLive(fs::PageKey(f, 0), fs::PageKey(f + 1, 0)), 0u);
}

// Whole zero pages written where no page of a new file was ever stored are holes already: they
// are not even buffered (a new WAL segment's 16 MiB of zeros cost no copy and no page to flush),
// yet read back as zeros, and zeros over a buffered page still replace it.
TEST_F(PageFsPipelineTest, ZeroPagesOfANewFileAreNotBuffered) {
  uint64_t f;
  ASSERT_EQ(Create("seg", &f), 0);
  ASSERT_EQ(fs_->Write(f, 0, std::string(16 * 8192, '\0'), false), 0);
  EXPECT_EQ(fs_->Stats().dirty_bytes, 0u);
  fs::InodeAttr attr;
  ASSERT_EQ(fs_->GetAttr(f, &attr), 0);
  EXPECT_EQ(attr.size, 16u * 8192);
  std::string data;
  ASSERT_EQ(fs_->Read(f, 5 * 8192, 8192, &data), 0);
  EXPECT_EQ(data, std::string(8192, '\0'));
  // A buffered page, then zeros over it (and a partial zero write): the zeros win.
  ASSERT_EQ(fs_->Write(f, 2 * 8192, "data", false), 0);
  ASSERT_EQ(fs_->Write(f, 3 * 8192, "more", false), 0);
  EXPECT_EQ(fs_->Stats().dirty_bytes, 2u * 8192);
  ASSERT_EQ(fs_->Write(f, 2 * 8192, std::string(8192, '\0'), false), 0);
  ASSERT_EQ(fs_->Write(f, 3 * 8192, std::string(4, '\0'), false), 0);
  ASSERT_EQ(fs_->Read(f, 2 * 8192, 2 * 8192, &data), 0);
  EXPECT_EQ(data, std::string(2 * 8192, '\0'));
  ASSERT_EQ(fs_->Fsync(f), 0);
  EXPECT_EQ(fs_->Stats().dirty_bytes, 0u);
  CrashAndMount();
  f = Lookup("seg");
  ASSERT_EQ(fs_->GetAttr(f, &attr), 0);
  EXPECT_EQ(attr.size, 16u * 8192);
  ASSERT_EQ(fs_->Open(f, O_RDONLY), 0);
  ASSERT_EQ(fs_->Read(f, 0, 16 * 8192, &data), 0);
  EXPECT_EQ(data, std::string(16 * 8192, '\0'));
  EXPECT_EQ(store_.CountLive(fs::PageKey(f, 0), fs::PageKey(f + 1, 0)), 0u);
}

// A file loaded from the store may hold pages past its size (a crash between the page commits
// and the size commit of a large flush): zeros written there still delete them, so extending
// the file never brings the old bytes back.
TEST_F(PageFsPipelineTest, ZerosOverAStoredFileDeleteWhatMayLiePastItsSize) {
  uint64_t f;
  ASSERT_EQ(Create("f", &f), 0);
  ASSERT_EQ(fs_->Write(f, 0, "head", false), 0);
  ASSERT_EQ(fs_->Fsync(f), 0);
  // A page past the size, as such a crash leaves it.
  ASSERT_TRUE(store_.Commit(fs_->generation(), {{fs::PageKey(f, 3), "stale", false}}).ok());
  CrashAndMount();
  f = Lookup("f");
  ASSERT_NE(f, 0u);
  ASSERT_EQ(fs_->Open(f, O_RDWR), 0);
  ASSERT_EQ(fs_->Write(f, 8192, std::string(3 * 8192, '\0'), false), 0);
  ASSERT_EQ(fs_->Fsync(f), 0);
  CrashAndMount();
  f = Lookup("f");
  ASSERT_EQ(fs_->Open(f, O_RDONLY), 0);
  std::string data;
  ASSERT_EQ(fs_->Read(f, 3 * 8192, 5, &data), 0);
  EXPECT_EQ(data, std::string(5, '\0'));
}

}  // namespace
}  // namespace pgbranch::pagefs
