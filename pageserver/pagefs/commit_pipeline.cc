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
  std::vector<std::function<void()>> ready;
  if (poison_.ok()) {
    auto end = hooks_.upper_bound(acked_);
    for (auto it = hooks_.begin(); it != end; ++it) ready.push_back(std::move(it->second));
    hooks_.erase(hooks_.begin(), end);
  }
  // The hooks first: one replies to an fsync, which its waiter (the fsync's FUSE thread, woken
  // below) would only delay by taking the CPU. Woken after the unlock, a waiter runs at once
  // instead of blocking again on mu_ while this thread still holds it.
  lock.unlock();
  for (auto& hook : ready) hook();
  cv_.notify_all();
}

void CommitPipeline::Poison(const absl::Status& status) {
  std::lock_guard<std::mutex> lock(mu_);
  if (poison_.ok()) {
    poison_ = status.ok() ? absl::UnavailableError("commit pipeline failed") : status;
  }
  hooks_.clear();  // their waiters report the poison
  cv_.notify_all();
}

void CommitPipeline::WaitUntilLocked(std::unique_lock<std::mutex>& lock,
                                     const std::function<bool()>& ready) {
  while (poison_.ok() && !ready()) {
    if (limits_.ack_timeout.count() == 0 || inflight_.empty()) {
      cv_.wait(lock);
      continue;
    }
    const auto deadline = inflight_.front().issued_at + limits_.ack_timeout;
    if (std::chrono::steady_clock::now() < deadline) {
      cv_.wait_until(lock, deadline);
      continue;
    }
    poison_ = absl::DeadlineExceededError(absl::StrCat(
        "the pageserver has not acknowledged commit ", inflight_.front().seq, " for ",
        limits_.ack_timeout.count() / 1000.0, " s; every later write and fsync fails"));
    cv_.notify_all();
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

void CommitPipeline::OnDurable(uint64_t seq, std::function<void()> hook) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!poison_.ok()) return;
    if (seq == 0) seq = issued_;
    if (acked_ < seq) {
      hooks_.emplace(seq, std::move(hook));
      return;
    }
  }
  hook();
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
