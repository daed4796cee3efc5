#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pgbranch::pagefs {

struct PageMutation;

// The client half of ordered, pipelined commits: sequence numbers, acknowledgements, read-your-
// writes, backpressure and poisoning. Transport-free: a PageStore sends through the callback of
// Issue and reports answers with Ack / Poison. Thread-safe.
//
// Invariants:
//  - commits are numbered 1, 2, ... in the order they are sent (Issue sends holding its lock);
//    the transport applies them in that order and acknowledges them in that order, so
//    acknowledged = durable and a prefix of what was issued;
//  - once poisoned (a commit failed or may have been lost), every later Issue, wait and head read
//    fails with that first error: nothing issued after a lost commit is ever reported durable,
//    and no read answers as if a lost commit had been applied;
//  - at most max_commits commits and max_bytes bytes are unacknowledged (Issue waits), except
//    that one commit larger than max_bytes is admitted alone;
//  - a waiter never waits forever on a pageserver that hangs: once the oldest unacknowledged
//    commit has waited ack_timeout, the pipeline is poisoned (DEADLINE_EXCEEDED), as the unary
//    commits' deadline failed them before pipelining.
class CommitPipeline {
 public:
  struct Limits {
    uint64_t max_bytes = 64ull << 20;
    uint64_t max_commits = 4096;
    std::chrono::milliseconds ack_timeout{60000};  // 0: wait forever
  };

  explicit CommitPipeline(Limits limits);
  CommitPipeline() : CommitPipeline(Limits()) {}

  // Waits for room, numbers the commit and calls `send(seq)` (holding the issue lock, so that
  // sends happen in sequence order). A send error poisons the pipeline. Returns the sequence
  // number, or the poison.
  absl::StatusOr<uint64_t> Issue(const std::vector<PageMutation>& mutations,
                                 const std::function<absl::Status(uint64_t seq)>& send);
  // The oldest unacknowledged commit is durable (the transport answers in order).
  void Ack();
  // Records the first failure; wakes every waiter. Later calls keep the first error.
  void Poison(const absl::Status& status);

  // Waits until commit `seq` (and so every commit before it) is acknowledged. The poison if the
  // pipeline is poisoned, whatever was acknowledged.
  absl::Status WaitDurable(uint64_t seq);
  // WaitDurable of the last commit issued so far (OK at once if none).
  absl::Status Sync();
  // Runs `done` exactly once: with OK once commit `seq` (0: the last commit issued so far) and
  // every commit before it are acknowledged, or with the poison once the pipeline is poisoned
  // (at once if it already is, whatever was acknowledged). At once on the calling thread if the
  // outcome is known already; otherwise on the thread that acknowledges the commit (the
  // transport's answer reader) or that poisons the pipeline (the reader, a sender, Issue's
  // caller, a waiter or PoisonIfOverdue's caller seeing the ack timeout pass). Always outside
  // the pipeline's lock. `done` must not block and must not call into the pipeline.
  // How an fsync is answered without a thread of its own waiting for it (PageFs::Fsync).
  void OnDurable(uint64_t seq, std::function<void(const absl::Status&)> done);
  // Poisons the pipeline (DEADLINE_EXCEEDED) if the oldest unacknowledged commit has waited
  // ack_timeout, as a waiter would: OnDurable callbacks have no thread of their own that waits,
  // so whoever owns them calls this periodically (PageFs's background flusher, every ~50 ms).
  void PoisonIfOverdue();
  // Read-your-writes for reads at the head: waits until every commit issued so far that touches
  // one of `keys` (or a key in [start, end), end empty: unbounded) is acknowledged, i.e. until the
  // last such commit is (acknowledgements come in order); returns at once when none is in
  // flight. Commits issued after the call, and in-flight commits that touch none of the keys,
  // are not waited for: they cannot change what the read returns. The poison if poisoned.
  absl::Status BeforeRead(const std::vector<std::string>& keys);
  absl::Status BeforeScan(const std::string& start, const std::string& end);
  // The sequence number of the last unacknowledged commit that touches one of `keys` (0: none is
  // in flight), or the poison. Waiting for it (WaitDurable) waits for every earlier commit that
  // touches them too (acknowledgements come in order): how an fsync with nothing of its own to
  // flush waits only for its file's commits (PageFs::Fsync).
  absl::StatusOr<uint64_t> LastPending(const std::vector<std::string>& keys);

  uint64_t issued();
  uint64_t acknowledged();
  absl::Status poison();

 private:
  struct Entry {
    uint64_t seq;
    uint64_t bytes;
    std::vector<std::string> keys;
    std::chrono::steady_clock::time_point issued_at;
  };
  // Waits (holding `lock` on mu_) until `ready()` or the pipeline is poisoned, poisoning it when
  // the oldest unacknowledged commit passes ack_timeout (then runs the OnDurable callbacks with
  // `lock` released for a moment).
  void WaitUntilLocked(std::unique_lock<std::mutex>& lock, const std::function<bool()>& ready);
  // Waits (holding `lock` on mu_) until `seq` is acknowledged or the pipeline is poisoned.
  absl::Status WaitLocked(std::unique_lock<std::mutex>& lock, uint64_t seq);

  const Limits limits_;
  std::mutex issue_mu_;  // held across numbering and sending: sends are in sequence order
  std::mutex mu_;
  std::condition_variable cv_;
  // Guarded by mu_.
  std::deque<Entry> inflight_;  // issued, not yet acknowledged, in sequence order
  uint64_t inflight_bytes_ = 0;
  uint64_t issued_ = 0, acked_ = 0;
  struct Pending {
    int commits = 0;    // in-flight commits that touch the key
    uint64_t last = 0;  // the sequence number of the last of them
  };
  // Waits (holding `lock` on mu_) until commit `last` is acknowledged (0: nothing to wait for).
  absl::Status WaitForKeysLocked(std::unique_lock<std::mutex>& lock, uint64_t last);
  std::map<std::string, Pending> pending_keys_;  // key -> its in-flight commits
  // Sets poison_ (the first error wins) and takes every OnDurable callback, for the caller to run
  // with `status` once it released mu_. Caller holds mu_.
  std::vector<std::function<void(const absl::Status&)>> PoisonLocked(const absl::Status& status);
  // The DEADLINE_EXCEEDED poison if the oldest unacknowledged commit has waited ack_timeout
  // (OK otherwise). Caller holds mu_.
  absl::Status OverdueLocked();
  // OnDurable callbacks by sequence number. Empty once poisoned: Poison takes them all, and a
  // later OnDurable runs at once.
  std::multimap<uint64_t, std::function<void(const absl::Status&)>> hooks_;
  absl::Status poison_;
};

}  // namespace pgbranch::pagefs
