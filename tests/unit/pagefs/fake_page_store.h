#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <mutex>

#include "pageserver/pagefs/page_store.h"

namespace pgbranch::pagefs {

// One timeline in memory, with generations and LSNs like the pageserver's. Thread-safe.
class FakePageStore : public PageStore {
 public:
  absl::StatusOr<std::vector<std::optional<std::string>>> Read(
      uint64_t lsn, const std::vector<std::string>& keys) override {
    std::vector<std::optional<std::string>> out;
    std::function<void()> hook;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++reads_;
      if (lsn == 0) lsn = head_;
      for (const auto& k : keys) out.push_back(GetLocked(k, lsn));
      hook.swap(after_read_);
    }
    if (hook) hook();  // the values are read: what the hook changes, this read does not see
    return out;
  }
  absl::StatusOr<ScanPage> Scan(uint64_t lsn, const std::string& start, const std::string& end,
                                uint32_t limit) override {
    std::lock_guard<std::mutex> lock(mu_);
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
  absl::StatusOr<uint64_t> AcquireWriter() override {
    std::lock_guard<std::mutex> lock(mu_);
    return ++generation_;
  }
  absl::StatusOr<uint64_t> LsnForTimestamp(int64_t) override { return head_; }
  absl::StatusOr<uint64_t> HeadLsn() override {
    std::lock_guard<std::mutex> lock(mu_);
    return head_;
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
  std::function<void()> after_read_;
};

}  // namespace pgbranch::pagefs
