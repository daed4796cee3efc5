#include "pageserver/pagefs/commit_pipeline.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "pageserver/pagefs/page_store.h"

namespace pgbranch::pagefs {

CommitPipeline::CommitPipeline(Limits limits) : limits_(limits) {}

absl::StatusOr<uint64_t> CommitPipeline::Issue(
    const std::vector<PageMutation>& mutations,
    const std::function<absl::Status(uint64_t seq)>& send) {
  Entry e;
  e.bytes = 0;
  e.keys.reserve(mutations.size());
  for (const PageMutation& m : mutations) {
    e.bytes += m.key.size() + m.value.size() + 16;
    e.keys.push_back(m.key);
  }
  std::lock_guard<std::mutex> issue(issue_mu_);
  uint64_t seq = 0;
  {
    std::unique_lock<std::mutex> lock(mu_);
    WaitUntilLocked(lock, [&] {
      return inflight_.empty() || (inflight_.size() < limits_.max_commits &&
                                   inflight_bytes_ + e.bytes <= limits_.max_bytes);
    });
    if (!poison_.ok()) return poison_;
    seq = e.seq = ++issued_;
    e.issued_at = std::chrono::steady_clock::now();
    inflight_bytes_ += e.bytes;
    for (const std::string& k : e.keys) {
      Pending& pk = pending_keys_[k];
      ++pk.commits;
      pk.last = seq;
    }
    inflight_.push_back(std::move(e));
  }
  absl::Status s = send(seq);
  if (!s.ok()) {
    Poison(s);
    return s;
  }
  return seq;
}

void CommitPipeline::Ack() {
  std::unique_lock<std::mutex> lock(mu_);
  if (inflight_.empty()) return;  // an answer to nothing: the transport poisons on its own
  Entry& e = inflight_.front();
  for (const std::string& k : e.keys) {
    auto it = pending_keys_.find(k);
    if (it != pending_keys_.end() && --it->second.commits == 0) pending_keys_.erase(it);
  }
  inflight_bytes_ -= e.bytes;
  acked_ = e.seq;
  inflight_.pop_front();
  std::vector<std::function<void(const absl::Status&)>> ready;
  if (poison_.ok()) {
    auto end = hooks_.upper_bound(acked_);
    for (auto it = hooks_.begin(); it != end; ++it) ready.push_back(std::move(it->second));
    hooks_.erase(hooks_.begin(), end);
  }
  // The callbacks first: one replies to an fsync, whose caller waits for nothing else. Woken
  // after the unlock, a waiter runs at once instead of blocking again on mu_ while this thread
  // still holds it.
  lock.unlock();
  for (auto& done : ready) done(absl::OkStatus());
  cv_.notify_all();
}

std::vector<std::function<void(const absl::Status&)>> CommitPipeline::PoisonLocked(
    const absl::Status& status) {
  if (poison_.ok()) {
    poison_ = status.ok() ? absl::UnavailableError("commit pipeline failed") : status;
  }
  std::vector<std::function<void(const absl::Status&)>> failed;
  failed.reserve(hooks_.size());
  for (auto& [seq, done] : hooks_) failed.push_back(std::move(done));
  hooks_.clear();
  cv_.notify_all();
  return failed;
}

void CommitPipeline::Poison(const absl::Status& status) {
  std::unique_lock<std::mutex> lock(mu_);
  auto failed = PoisonLocked(status);
  absl::Status poison = poison_;
  lock.unlock();
  for (auto& done : failed) done(poison);
}

absl::Status CommitPipeline::OverdueLocked() {
  if (limits_.ack_timeout.count() == 0 || inflight_.empty()) return absl::OkStatus();
  if (std::chrono::steady_clock::now() < inflight_.front().issued_at + limits_.ack_timeout) {
    return absl::OkStatus();
  }
  return absl::DeadlineExceededError(
      absl::StrCat("the pageserver has not acknowledged commit ", inflight_.front().seq, " for ",
                   limits_.ack_timeout.count() / 1000.0, " s; every later write and fsync fails"));
}

void CommitPipeline::PoisonIfOverdue() {
  std::unique_lock<std::mutex> lock(mu_);
  if (!poison_.ok()) return;
  absl::Status overdue = OverdueLocked();
  if (overdue.ok()) return;
  auto failed = PoisonLocked(overdue);
  lock.unlock();
  for (auto& done : failed) done(overdue);
}

void CommitPipeline::WaitUntilLocked(std::unique_lock<std::mutex>& lock,
                                     const std::function<bool()>& ready) {
  while (poison_.ok() && !ready()) {
    if (limits_.ack_timeout.count() == 0 || inflight_.empty()) {
      cv_.wait(lock);
      continue;
    }
    absl::Status overdue = OverdueLocked();
    if (overdue.ok()) {
      cv_.wait_until(lock, inflight_.front().issued_at + limits_.ack_timeout);
      continue;
    }
    auto failed = PoisonLocked(overdue);
    if (failed.empty()) continue;
    // Outside mu_, as everywhere; the poison is set, so the loop ends once it is taken again.
    lock.unlock();
    for (auto& done : failed) done(overdue);
    lock.lock();
  }
}

absl::Status CommitPipeline::WaitLocked(std::unique_lock<std::mutex>& lock, uint64_t seq) {
  WaitUntilLocked(lock, [&] { return acked_ >= seq; });
  return poison_;
}

absl::Status CommitPipeline::WaitDurable(uint64_t seq) {
  std::unique_lock<std::mutex> lock(mu_);
  return WaitLocked(lock, seq);
}

absl::Status CommitPipeline::Sync() {
  std::unique_lock<std::mutex> lock(mu_);
  return WaitLocked(lock, issued_);
}

void CommitPipeline::OnDurable(uint64_t seq, std::function<void(const absl::Status&)> done) {
  absl::Status outcome;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (seq == 0) seq = issued_;
    if (poison_.ok() && acked_ < seq) {
      hooks_.emplace(seq, std::move(done));
      return;
    }
    outcome = poison_;
  }
  done(outcome);
}

absl::Status CommitPipeline::WaitForKeysLocked(std::unique_lock<std::mutex>& lock, uint64_t last) {
  if (last == 0) return absl::OkStatus();
  // Acknowledgements come in order: once `last` is, so is every earlier commit touching the keys.
  return WaitLocked(lock, last);
}

absl::Status CommitPipeline::BeforeRead(const std::vector<std::string>& keys) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!poison_.ok()) return poison_;
  if (inflight_.empty()) return absl::OkStatus();
  uint64_t last = 0;
  for (const std::string& k : keys) {
    auto it = pending_keys_.find(k);
    if (it != pending_keys_.end()) last = std::max(last, it->second.last);
  }
  return WaitForKeysLocked(lock, last);
}

absl::Status CommitPipeline::BeforeScan(const std::string& start, const std::string& end) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!poison_.ok()) return poison_;
  if (inflight_.empty()) return absl::OkStatus();
  uint64_t last = 0;
  for (auto it = pending_keys_.lower_bound(start);
       it != pending_keys_.end() && (end.empty() || it->first < end); ++it) {
    last = std::max(last, it->second.last);
    if (last == issued_) break;  // nothing later to wait for
  }
  return WaitForKeysLocked(lock, last);
}

absl::StatusOr<uint64_t> CommitPipeline::LastPending(const std::vector<std::string>& keys) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!poison_.ok()) return poison_;
  uint64_t last = 0;
  if (inflight_.empty()) return last;
  for (const std::string& k : keys) {
    auto it = pending_keys_.find(k);
    if (it != pending_keys_.end()) last = std::max(last, it->second.last);
  }
  return last;
}

uint64_t CommitPipeline::issued() {
  std::lock_guard<std::mutex> lock(mu_);
  return issued_;
}

uint64_t CommitPipeline::acknowledged() {
  std::lock_guard<std::mutex> lock(mu_);
  return acked_;
}

absl::Status CommitPipeline::poison() {
  std::lock_guard<std::mutex> lock(mu_);
  return poison_;
}

}  // namespace pgbranch::pagefs
