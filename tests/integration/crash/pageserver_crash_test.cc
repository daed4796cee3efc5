// Kill -9 of a real pageserver under concurrent load, again and again.
//
// Several writer threads commit batches (each to its own key range; batches of 1..64 keys of
// ~8 KiB values that name their writer and batch, some overwriting earlier keys); one of them also
// creates branches. A controller kills the pageserver with SIGKILL at random moments, sometimes
// while a checkpoint/GC it asked for is running, restarts it on the same data directory and, with
// the writers parked, checks the invariant (I) "acknowledged means durable" and its converse:
//  - every acknowledged batch is there, with exactly its bytes, at head and at its own LSN;
//  - a batch whose commit did not return OK (at most one per writer: it was in flight at the kill)
//    is either wholly present or wholly absent, and an absent one never shows up later;
//  - the committed batches account for every LSN of the timeline: nothing else was committed;
//  - acknowledged branches exist, at their branch point, and read as the parent did there;
//  - the writer generation persisted, and a new one fences the old.
//
// PGBRANCH_CRASH_CYCLES (default 15) sets the number of kill/restart cycles; PGBRANCH_CRASH_SEED
// the seed (the schedule still depends on timing).
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/integration/crash/crash_model.h"
#include "tests/support/pageserver_process.h"

namespace pgbranch::crash {
namespace {

namespace v1 = ::pgbranch::pageserver::v1;
using Stub = v1::PageService::Stub;
using pgbranch::testing::PageserverProcess;
using pgbranch::testing::TempDir;

constexpr uint32_t kWriters = 4;
constexpr char kTenant[] = "crash";
constexpr char kRoot[] = "main";

uint64_t EnvNumber(const char* name, uint64_t fallback) {
  const char* v = getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return strtoull(v, nullptr, 10);
}

void SetDeadline(grpc::ClientContext* ctx, int seconds) {
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
}

std::string Describe(const grpc::Status& s) {
  return absl::StrCat("code ", static_cast<int>(s.error_code()), ": ", s.error_message());
}

// Runs a function when the scope ends (also on an early ASSERT return).
class Cleanup {
 public:
  explicit Cleanup(std::function<void()> fn) : fn_(std::move(fn)) {}
  ~Cleanup() { fn_(); }

 private:
  std::function<void()> fn_;
};

struct BranchRecord {
  std::string id;
  BatchState state = BatchState::kInFlight;  // kAcked / kUncertain / kCommitted / kLost
  uint64_t ancestor_lsn = 0;
  bool checked = false;
};

class PageserverCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cycles_ = EnvNumber("PGBRANCH_CRASH_CYCLES", 15);
    seed_ = EnvNumber("PGBRANCH_CRASH_SEED", 20240611);
    rng_.seed(seed_);
    server_ = std::make_unique<PageserverProcess>(
        dir_.path() + "/data",
        std::vector<std::string>{"--history-seconds", "86400", "--memtable-flush-mb", "24",
                                 "--gc-interval-seconds", "3"});
    for (uint32_t w = 0; w < kWriters; ++w) {
      models_.push_back(std::make_unique<WriterModel>(w, seed_ * 31 + w));
    }
  }

  // ---- The writers --------------------------------------------------------------------------

  void RunWriter(uint32_t w) {
    WriterModel& model = *models_[w];
    uint64_t blocked_epoch = UINT64_MAX;  // after a failure, wait for the next restart
    while (true) {
      std::shared_ptr<Stub> stub;
      uint64_t generation, epoch;
      {
        std::unique_lock<std::mutex> l(mu_);
        auto runnable = [&] { return stop_ || (!down_ && epoch_ != blocked_epoch); };
        if (!runnable()) {
          ++parked_;
          cv_.notify_all();
          cv_.wait(l, runnable);
          --parked_;
        }
        if (stop_) return;
        stub = stub_;
        generation = generation_;
        epoch = epoch_;
      }
      bool ok = (w == 0 && model.rng()() % 16 == 0) ? CreateBranch(stub.get())
                                                    : CommitBatch(stub.get(), generation, &model);
      if (!ok) blocked_epoch = epoch;
    }
  }

  bool CommitBatch(Stub* stub, uint64_t generation, WriterModel* model) {
    const Batch& b = model->PlanBatch();
    v1::CommitRequest req;
    req.set_tenant_id(kTenant);
    req.set_timeline_id(kRoot);
    req.set_generation(generation);
    for (uint32_t k : b.keys) {
      v1::Mutation* m = req.add_mutations();
      m->set_key(KeyName(model->writer(), k));
      m->set_value(BatchValue(model->writer(), b.seq, k));
    }
    v1::CommitResponse resp;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, 20);
    grpc::Status s = stub->Commit(&ctx, req, &resp);
    if (s.ok()) {
      model->AckLast(resp.lsn());
      return true;
    }
    model->FailLast();
    NoteFailure("Commit", s);
    return false;
  }

  bool CreateBranch(Stub* stub) {
    BranchRecord* rec;
    {
      std::lock_guard<std::mutex> l(branches_mu_);
      branches_.push_back({absl::StrCat("br-", branches_.size())});
      rec = &branches_.back();
    }
    v1::CreateTimelineRequest req;
    req.set_tenant_id(kTenant);
    req.set_timeline_id(rec->id);
    req.set_ancestor_timeline_id(kRoot);
    v1::Timeline resp;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, 20);
    grpc::Status s = stub->CreateTimeline(&ctx, req, &resp);
    std::lock_guard<std::mutex> l(branches_mu_);
    if (s.ok()) {
      rec->state = BatchState::kAcked;
      rec->ancestor_lsn = resp.ancestor_lsn();
      return true;
    }
    rec->state = BatchState::kUncertain;
    NoteFailure("CreateTimeline", s);
    return false;
  }

  // A failure is expected only because the server died under the call.
  void NoteFailure(const char* what, const grpc::Status& s) {
    std::lock_guard<std::mutex> l(mu_);
    ++failures_by_code_[s.error_code()];
    if (!down_ && !killing_) {
      ADD_FAILURE() << what << " failed while the pageserver was up: " << Describe(s);
    }
  }

  // ---- The controller -----------------------------------------------------------------------

  void StartServer() {
    absl::Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s;
    stub_ = server_->NewStub();
  }

  void KillAndPark() {
    {
      std::lock_guard<std::mutex> l(mu_);
      killing_ = true;
    }
    server_->Kill();
    std::unique_lock<std::mutex> l(mu_);
    down_ = true;
    killing_ = false;
    cv_.wait(l, [&] { return parked_ == kWriters; });
  }

  void Unpark() {
    std::lock_guard<std::mutex> l(mu_);
    ++epoch_;
    down_ = false;
    cv_.notify_all();
  }

  // Asks for a checkpoint (and maybe GC + compaction) after `delay`; the kill may land in it.
  std::thread MaintenanceInBackground(std::chrono::milliseconds delay, bool gc) {
    std::shared_ptr<Stub> stub = stub_;
    return std::thread([this, stub, delay, gc] {
      std::this_thread::sleep_for(delay);
      v1::RunMaintenanceRequest req;
      req.set_gc(gc);
      v1::RunMaintenanceResponse resp;
      grpc::ClientContext ctx;
      SetDeadline(&ctx, 60);
      grpc::Status s = stub->RunMaintenance(&ctx, req, &resp);
      std::lock_guard<std::mutex> l(mu_);
      (s.ok() ? maintenance_ok_ : maintenance_cut_)++;
    });
  }

  void RunMaintenanceNow(bool gc) {
    v1::RunMaintenanceRequest req;
    req.set_gc(gc);
    v1::RunMaintenanceResponse resp;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, 60);
    grpc::Status s = stub_->RunMaintenance(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << "RunMaintenance: " << Describe(s);
    ++maintenance_ok_;
  }

  // After a restart: the generation persisted; take a new one and check that it fences the old.
  void ReacquireWriter() {
    EXPECT_EQ(GetTimeline(kRoot).writer_generation(), generation_)
        << "the writer generation did not persist";

    v1::AcquireWriterRequest req;
    req.set_tenant_id(kTenant);
    req.set_timeline_id(kRoot);
    v1::AcquireWriterResponse resp;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, 10);
    grpc::Status s = stub_->AcquireWriter(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << Describe(s);
    ASSERT_GT(resp.generation(), generation_);
    uint64_t old = generation_;
    generation_ = resp.generation();
    if (old == 0) return;

    v1::CommitRequest creq;
    creq.set_tenant_id(kTenant);
    creq.set_timeline_id(kRoot);
    creq.set_generation(old);
    v1::Mutation* m = creq.add_mutations();
    m->set_key("fenced/probe");
    m->set_value("must not be committed");
    v1::CommitResponse cresp;
    grpc::ClientContext cctx;
    SetDeadline(&cctx, 10);
    s = stub_->Commit(&cctx, creq, &cresp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
        << "a commit under the fenced generation " << old << " got " << Describe(s);
  }

  // ---- Verification -------------------------------------------------------------------------

  // Reads keys at `lsn` (0: head) of `timeline`.
  std::vector<v1::Value> Read(const std::string& timeline, uint64_t lsn,
                              const std::vector<std::string>& keys) {
    v1::ReadRequest req;
    req.set_tenant_id(kTenant);
    req.set_timeline_id(timeline);
    req.set_lsn(lsn);
    for (const std::string& k : keys) req.add_keys(k);
    v1::ReadResponse resp;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, 30);
    grpc::Status s = stub_->Read(&ctx, req, &resp);
    if (!s.ok() || resp.values_size() != static_cast<int>(keys.size())) {
      ADD_FAILURE() << "Read of " << keys.size() << " keys at " << timeline << "@" << lsn
                    << " failed: " << Describe(s);
      return {};
    }
    return {resp.values().begin(), resp.values().end()};
  }

  // Checks that `got` is what `expected` (nullptr: absent) wrote; returns false on a mismatch.
  bool CheckValue(const std::string& where, uint32_t w, uint32_t key, const Batch* expected,
                  const v1::Value& got) {
    if (expected == nullptr && !got.found()) return true;
    if (expected != nullptr && got.found() && got.data() == BatchValue(w, expected->seq, key)) {
      return true;
    }
    ADD_FAILURE() << where << ": key " << KeyName(w, key) << " reads as "
                  << (got.found() ? DescribeValue(got.data()) : std::string("absent"))
                  << ", expected "
                  << (expected ? absl::StrCat("batch ", expected->seq, " (LSN ", expected->lsn, ")")
                               : std::string("absent"));
    return false;
  }

  v1::Timeline GetTimeline(const std::string& timeline) {
    v1::GetTimelineRequest req;
    req.set_tenant_id(kTenant);
    req.set_timeline_id(timeline);
    v1::Timeline tl;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, 10);
    grpc::Status s = stub_->GetTimeline(&ctx, req, &tl);
    EXPECT_TRUE(s.ok()) << Describe(s);
    return tl;
  }

  uint64_t HeadLsn(const std::string& timeline) { return GetTimeline(timeline).head_lsn(); }

  // The last batch of `model` failed: find out whether it is wholly there or wholly absent.
  void ResolveUncertain(WriterModel* model, uint64_t head) {
    const Batch* b = model->uncertain();
    if (b == nullptr) return;
    uint32_t w = model->writer();
    std::vector<std::string> names;
    for (uint32_t k : b->keys) names.push_back(KeyName(w, k));
    std::vector<v1::Value> got = Read(kRoot, 0, names);
    if (got.empty()) return;
    size_t present = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      present += got[i].found() && got[i].data() == BatchValue(w, b->seq, b->keys[i]);
    }
    if (present != 0 && present != got.size()) {
      ADD_FAILURE() << "batch " << b->seq << " of writer " << w << " is torn: " << present
                    << " of its " << got.size() << " keys are present";
    }
    if (present == 0) {
      model->ResolveLast(false, 0);
      ++uncertain_lost_;
      return;
    }
    // Present: its LSN is the first at which its first key reads as this batch.
    uint64_t lo = model->max_lsn() + 1, hi = head;
    std::string value = BatchValue(w, b->seq, b->keys[0]);
    while (lo < hi) {
      uint64_t mid = lo + (hi - lo) / 2;
      std::vector<v1::Value> v = Read(kRoot, mid, {names[0]});
      if (v.empty()) return;
      if (v[0].found() && v[0].data() == value) {
        hi = mid;
      } else {
        lo = mid + 1;
      }
    }
    model->ResolveLast(true, lo);
    ++uncertain_present_;
  }

  void ResolveBranches() {
    std::lock_guard<std::mutex> l(branches_mu_);
    for (BranchRecord& br : branches_) {
      if (br.state != BatchState::kUncertain) continue;
      v1::GetTimelineRequest req;
      req.set_tenant_id(kTenant);
      req.set_timeline_id(br.id);
      v1::Timeline tl;
      grpc::ClientContext ctx;
      SetDeadline(&ctx, 10);
      grpc::Status s = stub_->GetTimeline(&ctx, req, &tl);
      if (s.ok()) {
        br.state = BatchState::kCommitted;
        br.ancestor_lsn = tl.ancestor_lsn();
      } else {
        EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(s);
        br.state = BatchState::kLost;
      }
    }
  }

  void Verify(const std::string& label) {
    SCOPED_TRACE(label);
    uint64_t head = HeadLsn(kRoot);
    for (auto& m : models_) ResolveUncertain(m.get(), head);
    ResolveBranches();

    // Every LSN of the root is exactly one committed batch: nothing more, nothing less.
    std::map<uint64_t, std::string> by_lsn;
    for (auto& m : models_) {
      for (const Batch& b : m->batches()) {
        if (!b.committed()) continue;
        std::string name = absl::StrCat("writer ", m->writer(), " batch ", b.seq);
        auto [it, inserted] = by_lsn.emplace(b.lsn, name);
        EXPECT_TRUE(inserted) << name << " and " << it->second << " share LSN " << b.lsn;
      }
    }
    EXPECT_EQ(by_lsn.size(), head) << "the root's head LSN is " << head << " but " << by_lsn.size()
                                   << " batches are known to be committed";
    if (!by_lsn.empty()) {
      EXPECT_EQ(by_lsn.rbegin()->first, head);
    }

    for (auto& m : models_) VerifyWriter(*m, head);
    VerifyBranches();
  }

  void VerifyWriter(WriterModel& model, uint64_t head) {
    uint32_t w = model.writer();
    // Head: a scan of the writer's range shows exactly the latest committed value of each key.
    std::set<uint32_t> seen;
    std::string start = WriterPrefix(w);
    int mismatches = 0;
    while (mismatches < 5) {
      v1::ScanRequest req;
      req.set_tenant_id(kTenant);
      req.set_timeline_id(kRoot);
      req.set_start(start);
      req.set_end(WriterEnd(w));
      req.set_limit(64);
      v1::ScanResponse resp;
      grpc::ClientContext ctx;
      SetDeadline(&ctx, 30);
      grpc::Status s = stub_->Scan(&ctx, req, &resp);
      if (!s.ok()) {
        ADD_FAILURE() << "Scan of writer " << w << ": " << Describe(s);
        return;
      }
      for (const v1::KeyValue& kv : resp.entries()) {
        uint32_t kw, k;
        if (!ParseKeyName(kv.key(), &kw, &k) || kw != w) {
          ADD_FAILURE() << "unexpected key '" << kv.key() << "' in the range of writer " << w;
          ++mismatches;
          continue;
        }
        seen.insert(k);
        v1::Value v;
        v.set_found(true);
        v.set_data(kv.value());
        if (!CheckValue("head", w, k, model.VisibleAt(k, head), v)) ++mismatches;
      }
      if (!resp.more() || resp.entries_size() == 0) break;
      start = resp.entries(resp.entries_size() - 1).key() + std::string(1, '\0');
    }
    for (uint32_t k = 0; k < model.num_keys(); ++k) {
      if (seen.count(k) == 0 && model.VisibleAt(k, head) != nullptr) {
        ADD_FAILURE() << "key " << KeyName(w, k) << " is missing at head; batch "
                      << model.VisibleAt(k, head)->seq << " wrote it";
        if (++mismatches >= 5) return;
      }
    }

    // History: some committed batches read back whole at their own LSN...
    std::vector<const Batch*> committed;
    for (const Batch& b : model.batches()) {
      if (b.committed()) committed.push_back(&b);
    }
    for (int i = 0; i < 6 && !committed.empty() && mismatches < 5; ++i) {
      const Batch* b = committed[rng_() % committed.size()];
      std::vector<std::string> names;
      for (uint32_t k : b->keys) names.push_back(KeyName(w, k));
      std::vector<v1::Value> got = Read(kRoot, b->lsn, names);
      for (size_t j = 0; j < got.size(); ++j) {
        if (!CheckValue(absl::StrCat("LSN ", b->lsn), w, b->keys[j], b, got[j])) ++mismatches;
      }
    }
    // ...and random keys at random LSNs read as the model says.
    for (int i = 0; i < 8 && model.num_keys() > 0 && head > 0 && mismatches < 5; ++i) {
      uint64_t lsn = 1 + rng_() % head;
      std::vector<uint32_t> keys;
      std::vector<std::string> names;
      for (int j = 0; j < 8; ++j) {
        keys.push_back(static_cast<uint32_t>(rng_() % model.num_keys()));
        names.push_back(KeyName(w, keys.back()));
      }
      std::vector<v1::Value> got = Read(kRoot, lsn, names);
      for (size_t j = 0; j < got.size(); ++j) {
        if (!CheckValue(absl::StrCat("LSN ", lsn), w, keys[j], model.VisibleAt(keys[j], lsn),
                        got[j])) {
          ++mismatches;
        }
      }
    }
  }

  void VerifyBranches() {
    std::lock_guard<std::mutex> l(branches_mu_);
    // The tenant holds exactly the root and the committed branches.
    v1::ListTimelinesRequest req;
    req.set_tenant_id(kTenant);
    v1::ListTimelinesResponse resp;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, 10);
    grpc::Status s = stub_->ListTimelines(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << Describe(s);
    std::set<std::string> listed, expected = {kRoot};
    for (const v1::Timeline& tl : resp.timelines()) listed.insert(tl.timeline_id());
    for (const BranchRecord& br : branches_) {
      if (br.state == BatchState::kAcked || br.state == BatchState::kCommitted) {
        expected.insert(br.id);
      }
    }
    EXPECT_EQ(listed, expected);

    // New branches, and a couple of older ones, read as the root did at their branch point.
    std::vector<BranchRecord*> todo;
    for (BranchRecord& br : branches_) {
      if (expected.count(br.id) && (!br.checked || rng_() % 8 == 0)) todo.push_back(&br);
    }
    for (BranchRecord* br : todo) {
      br->checked = true;
      EXPECT_EQ(HeadLsn(br->id), br->ancestor_lsn) << "branch " << br->id;
      uint32_t w = rng_() % kWriters;
      const WriterModel& model = *models_[w];
      if (model.num_keys() == 0) continue;
      std::vector<uint32_t> keys;
      std::vector<std::string> names;
      for (int j = 0; j < 16; ++j) {
        keys.push_back(static_cast<uint32_t>(rng_() % model.num_keys()));
        names.push_back(KeyName(w, keys.back()));
      }
      std::vector<v1::Value> got = Read(br->id, 0, names);
      for (size_t j = 0; j < got.size(); ++j) {
        CheckValue(absl::StrCat("branch ", br->id, " (at LSN ", br->ancestor_lsn, ")"), w, keys[j],
                   model.VisibleAt(keys[j], br->ancestor_lsn), got[j]);
      }
    }
  }

  TempDir dir_;
  std::unique_ptr<PageserverProcess> server_;
  uint64_t cycles_ = 0;
  uint64_t seed_ = 0;
  std::mt19937_64 rng_;  // the controller's
  std::vector<std::unique_ptr<WriterModel>> models_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool down_ = false;     // the server is dead or being verified: writers park
  bool killing_ = false;  // a SIGKILL is on its way
  bool stop_ = false;
  uint64_t epoch_ = 0;  // restarts so far
  int parked_ = 0;
  std::shared_ptr<Stub> stub_;
  uint64_t generation_ = 0;
  std::map<grpc::StatusCode, int> failures_by_code_;
  int maintenance_ok_ = 0, maintenance_cut_ = 0;

  std::mutex branches_mu_;
  std::deque<BranchRecord> branches_;  // stable addresses

  int uncertain_present_ = 0, uncertain_lost_ = 0;
};

TEST_F(PageserverCrashTest, AcknowledgedWritesSurviveRepeatedKill9) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  {
    v1::CreateTenantRequest req;
    req.set_tenant_id(kTenant);
    req.set_root_timeline_id(kRoot);
    v1::Tenant resp;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, 10);
    grpc::Status s = stub_->CreateTenant(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << Describe(s);
    ASSERT_EQ(resp.root_timeline_id(), kRoot);
  }
  ASSERT_NO_FATAL_FAILURE(ReacquireWriter());

  std::vector<std::thread> writers;
  for (uint32_t w = 0; w < kWriters; ++w) writers.emplace_back([this, w] { RunWriter(w); });
  Cleanup stop_writers([&] {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
      cv_.notify_all();
    }
    for (auto& t : writers) t.join();
  });
  auto start = std::chrono::steady_clock::now();

  for (uint64_t cycle = 0; cycle < cycles_ && !HasFatalFailure(); ++cycle) {
    auto window = std::chrono::milliseconds(100 + rng_() % 601);
    std::thread maintenance;
    if (rng_() % 2 == 0) {
      auto delay = std::chrono::milliseconds(rng_() % window.count());
      maintenance = MaintenanceInBackground(delay, rng_() % 2 == 0);
    }
    std::this_thread::sleep_for(window);
    KillAndPark();
    if (maintenance.joinable()) maintenance.join();

    ASSERT_NO_FATAL_FAILURE(StartServer());
    Verify(absl::StrCat("after kill ", cycle + 1));
    ASSERT_NO_FATAL_FAILURE(ReacquireWriter());
    if (rng_() % 3 == 0) RunMaintenanceNow(rng_() % 2 == 0);
    if (::testing::Test::HasFailure()) break;
    Unpark();
  }

  // Finally a clean shutdown (which checkpoints) and one more check.
  {
    std::unique_lock<std::mutex> l(mu_);
    down_ = true;
    cv_.wait(l, [&] { return parked_ == kWriters; });
  }
  EXPECT_EQ(server_->Stop(), 0);
  ASSERT_NO_FATAL_FAILURE(StartServer());
  Verify("after a clean restart");

  size_t acked = 0, batches = 0;
  for (auto& m : models_) {
    batches += m->batches().size();
    for (const Batch& b : m->batches()) acked += b.state == BatchState::kAcked;
  }
  size_t branches = 0;
  for (const BranchRecord& br : branches_) {
    branches += br.state == BatchState::kAcked || br.state == BatchState::kCommitted;
  }
  std::string codes;
  for (const auto& [code, n] : failures_by_code_) {
    absl::StrAppend(&codes, " code", static_cast<int>(code), "=", n);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "crash test: " << epoch_ << " kill/restart cycles in " << secs << " s; " << batches
            << " batches sent, " << acked << " acknowledged, " << uncertain_present_
            << " unacknowledged found committed, " << uncertain_lost_
            << " unacknowledged found absent; " << branches << " branches; head LSN "
            << HeadLsn(kRoot) << "; maintenance " << maintenance_ok_ << " done, "
            << maintenance_cut_ << " cut by a kill; failed RPCs:" << codes << "\n";
  EXPECT_GT(acked, 0u);
}

}  // namespace
}  // namespace pgbranch::crash
