#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "pageserver/pagefs/commit_pipeline.h"
#include "pageserver/pagefs/page_store.h"

namespace pgbranch::pagefs {

// One timeline in memory, with generations and LSNs like the pageserver's. Thread-safe.
//
// Pipelined commits go through a real CommitPipeline. By default each is applied (and
// acknowledged) as it is issued, and a commit that fails (injected failure, fenced) fails its
// CommitAsync and poisons the pipeline. HoldCommits(true) queues them instead, unapplied and
// unacknowledged, until ReleaseHeld() applies them in order or DropHeld() loses them (a broken
// stream: the pipeline is poisoned). A new writer (AcquireWriter, i.e. a new mount) gets a fresh
// pipeline, as a new pagefs process would.
class FakePageStore : public PageStore {
 public:
  FakePageStore() : pipeline_(std::make_shared<CommitPipeline>()) {}

  absl::StatusOr<std::vector<std::optional<std::string>>> Read(
      uint64_t lsn, const std::vector<std::string>& keys) override {
    if (lsn == 0) {
      absl::Status ryw = pipeline()->BeforeRead(keys);
      if (!ryw.ok()) return ryw;
    }
    std::vector<std::optional<std::string>> out;
    std::function<void()> hook;
    bool failed = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++reads_;
      failed = fail_reads_ > 0;
      if (failed) --fail_reads_;
      if (lsn == 0) lsn = head_;
      for (const auto& k : keys) out.push_back(GetLocked(k, lsn));
      hook.swap(after_read_);
    }
    if (hook) hook();  // the values are read: what the hook changes, this read does not see
    if (failed) return absl::UnavailableError("injected read failure");
    return out;
  }
  absl::StatusOr<ScanPage> Scan(uint64_t lsn, const std::string& start, const std::string& end,
                                uint32_t limit) override {
    if (lsn == 0) {
      absl::Status ryw = pipeline()->BeforeScan(start, end);
      if (!ryw.ok()) return ryw;
    }
    std::lock_guard<std::mutex> lock(mu_);
    ++scans_;
    if (lsn == 0) lsn = head_;
    ScanPage page;
    for (auto it = data_.lower_bound(start); it != data_.end(); ++it) {
      if (!end.empty() && it->first >= end) break;
      auto v = GetLocked(it->first, lsn);
      if (!v) continue;
      if (page.entries.size() == limit) {
        page.more = true;
        break;
      }
      page.entries.emplace_back(it->first, *v);
    }
    return page;
  }
  absl::StatusOr<ScanPage> ScanKeys(uint64_t lsn, const std::string& start, const std::string& end,
                                    uint32_t limit) override {
    auto page = Scan(lsn, start, end, limit);
    if (page.ok()) {
      for (auto& e : page->entries) e.second.clear();
    }
    return page;
  }
  absl::StatusOr<uint64_t> Commit(uint64_t generation,
                                  const std::vector<PageMutation>& mutations) override {
    std::lock_guard<std::mutex> lock(mu_);
    return ApplyLocked(generation, mutations);
  }
  absl::StatusOr<uint64_t> CommitAsync(uint64_t generation,
                                       const std::vector<PageMutation>& mutations) override {
    std::shared_ptr<CommitPipeline> p = pipeline();
    return p->Issue(mutations, [&](uint64_t) -> absl::Status {
      std::lock_guard<std::mutex> lock(mu_);
      ++async_commits_;
      if (hold_) {
        held_.push_back({generation, mutations});
        return absl::OkStatus();
      }
      auto lsn = ApplyLocked(generation, mutations);
      if (!lsn.ok()) return lsn.status();
      p->Ack();
      return absl::OkStatus();
    });
  }
  // Like CommitAsync (the fake applies or holds both alike); counted apart.
  absl::StatusOr<uint64_t> CommitInBackground(uint64_t generation,
                                              const std::vector<PageMutation>& mutations) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++background_commits_;
    }
    return CommitAsync(generation, mutations);
  }
  absl::Status WaitDurable(uint64_t seq) override { return pipeline()->WaitDurable(seq); }
  absl::Status Sync() override { return pipeline()->Sync(); }
  void OnDurable(uint64_t seq, std::function<void(const absl::Status&)> done) override {
    pipeline()->OnDurable(seq, std::move(done));
  }
  void PoisonIfOverdue() override { pipeline()->PoisonIfOverdue(); }
  absl::StatusOr<uint64_t> LastPending(const std::vector<std::string>& keys) override {
    return pipeline()->LastPending(keys);
  }
  absl::StatusOr<uint64_t> AcquireWriter() override {
    std::lock_guard<std::mutex> lock(mu_);
    pipeline_ = std::make_shared<CommitPipeline>(limits_);
    held_.clear();
    hold_ = false;
    return ++generation_;
  }
  absl::StatusOr<uint64_t> LsnForTimestamp(int64_t) override { return head_; }
  absl::StatusOr<uint64_t> HeadLsn() override {
    std::lock_guard<std::mutex> lock(mu_);
    return head_;
  }

  // Test hooks of the pipeline (see the class comment).
  void HoldCommits(bool hold) {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = hold;
  }
  // Applies the oldest `max` held commits in order and acknowledges them; a failing one poisons
  // the pipeline and the rest are dropped. Returns how many were applied.
  size_t ReleaseHeld(size_t max = SIZE_MAX) {
    std::lock_guard<std::mutex> lock(mu_);
    size_t n = 0;
    while (!held_.empty() && n < max) {
      auto lsn = ApplyLocked(held_.front().generation, held_.front().mutations);
      held_.pop_front();
      if (!lsn.ok()) {
        pipeline_->Poison(lsn.status());
        held_.clear();
        break;
      }
      pipeline_->Ack();
      ++n;
    }
    return n;
  }
  // Loses the held commits, as a broken stream or a restarted pageserver would.
  void DropHeld(absl::Status why = absl::UnavailableError("the commit stream broke")) {
    std::lock_guard<std::mutex> lock(mu_);
    held_.clear();
    pipeline_->Poison(why);
  }
  size_t held() {
    std::lock_guard<std::mutex> lock(mu_);
    return held_.size();
  }
  // Backpressure limits of the pipelines made from now on.
  void set_pipeline_limits(CommitPipeline::Limits limits) {
    std::lock_guard<std::mutex> lock(mu_);
    limits_ = limits;
    pipeline_ = std::make_shared<CommitPipeline>(limits_);
  }
  // Another writer takes the generation, but this store's pipeline goes on (the fenced mount
  // learns of it from the answers to its commits).
  void FenceInPlace() {
    std::lock_guard<std::mutex> lock(mu_);
    ++generation_;
  }
  uint64_t scans() {
    std::lock_guard<std::mutex> lock(mu_);
    return scans_;
  }
  uint64_t async_commits() {
    std::lock_guard<std::mutex> lock(mu_);
    return async_commits_;
  }
  // Of async_commits(), those issued through CommitInBackground.
  uint64_t background_commits() {
    std::lock_guard<std::mutex> lock(mu_);
    return background_commits_;
  }

  void set_fail_commits(bool fail) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_commits_ = fail;
  }
  // Commits fail once `n` more have succeeded (-1: never).
  void FailAfterCommits(int64_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    commits_ok_ = 0;
    fail_after_commits_ = n;
  }
  // The most mutations any commit carried.
  size_t max_commit_keys() {
    std::lock_guard<std::mutex> lock(mu_);
    return max_commit_keys_;
  }
  void ResetMaxCommitKeys() {
    std::lock_guard<std::mutex> lock(mu_);
    max_commit_keys_ = 0;
  }
  // The number of live (not deleted) keys in [start, end) at the head.
  size_t CountLive(const std::string& start, const std::string& end) {
    std::lock_guard<std::mutex> lock(mu_);
    size_t n = 0;
    for (auto it = data_.lower_bound(start); it != data_.end() && it->first < end; ++it) {
      if (GetLocked(it->first, head_)) ++n;
    }
    return n;
  }
  uint64_t head() {
    std::lock_guard<std::mutex> lock(mu_);
    return head_;
  }
  // The next `n` Reads fail (counted in reads(); the after-read hook still runs first).
  void FailReads(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_reads_ = n;
  }
  // Runs `hook` once, inside the next Read, after it has read its values (a race in the window
  // between a read RPC's answer and its use).
  void set_after_read(std::function<void()> hook) {
    std::lock_guard<std::mutex> lock(mu_);
    after_read_ = std::move(hook);
  }
  uint64_t reads() {
    std::lock_guard<std::mutex> lock(mu_);
    return reads_;
  }

 private:
  struct Held {
    uint64_t generation;
    std::vector<PageMutation> mutations;
  };

  std::shared_ptr<CommitPipeline> pipeline() {
    std::lock_guard<std::mutex> lock(mu_);
    return pipeline_;
  }
  absl::StatusOr<uint64_t> ApplyLocked(uint64_t generation,
                                       const std::vector<PageMutation>& mutations) {
    if (fail_commits_ || (fail_after_commits_ >= 0 && commits_ok_ >= fail_after_commits_)) {
      return absl::UnavailableError("injected failure");
    }
    ++commits_ok_;
    max_commit_keys_ = std::max<size_t>(max_commit_keys_, mutations.size());
    if (generation != generation_) return absl::FailedPreconditionError("fenced");
    ++head_;
    for (const auto& m : mutations) {
      data_[m.key][head_] = m.tombstone ? std::nullopt : std::optional<std::string>(m.value);
    }
    return head_;
  }
  std::optional<std::string> GetLocked(const std::string& key, uint64_t lsn) {
    auto it = data_.find(key);
    if (it == data_.end()) return std::nullopt;
    auto v = it->second.upper_bound(lsn);
    if (v == it->second.begin()) return std::nullopt;
    return std::prev(v)->second;
  }

  std::mutex mu_;
  std::map<std::string, std::map<uint64_t, std::optional<std::string>>> data_;
  uint64_t head_ = 0;
  uint64_t generation_ = 0;
  uint64_t reads_ = 0;
  bool fail_commits_ = false;
  int64_t fail_after_commits_ = -1;
  int64_t commits_ok_ = 0;
  size_t max_commit_keys_ = 0;
  CommitPipeline::Limits limits_;
  std::shared_ptr<CommitPipeline> pipeline_;
  bool hold_ = false;
  std::deque<Held> held_;
  uint64_t async_commits_ = 0;
  uint64_t background_commits_ = 0;
  uint64_t scans_ = 0;
  std::function<void()> after_read_;
  int fail_reads_ = 0;  // guarded by mu_
};

}  // namespace pgbranch::pagefs
