#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pgbranch::pagefs {

struct PageMutation {
  std::string key;
  std::string value;
  bool tombstone = false;
};

struct ScanPage {
  std::vector<std::pair<std::string, std::string>> entries;
  bool more = false;
};

// What pagefs needs of one timeline of the pageserver. An interface so the filesystem logic can
// be unit-tested against an in-memory fake. Thread-safe.
class PageStore {
 public:
  virtual ~PageStore() = default;
  // Reads keys at `lsn` (0: head); a missing key yields nullopt.
  virtual absl::StatusOr<std::vector<std::optional<std::string>>> Read(
      uint64_t lsn, const std::vector<std::string>& keys) = 0;
  virtual absl::StatusOr<ScanPage> Scan(uint64_t lsn, const std::string& start,
                                        const std::string& end, uint32_t limit) = 0;
  // Like Scan, but returns keys only (the values are left empty, and the pageserver reads none):
  // how pagefs lists the pages of a file that exist.
  virtual absl::StatusOr<ScanPage> ScanKeys(uint64_t lsn, const std::string& start,
                                            const std::string& end, uint32_t limit) = 0;
  // Commits an atomic batch under `generation`; durable when it returns. Returns the LSN. Not
  // ordered with the pipelined commits below: pagefs uses it only before any (at mount).
  virtual absl::StatusOr<uint64_t> Commit(uint64_t generation,
                                          const std::vector<PageMutation>& mutations) = 0;

  // Pipelined commits (CommitPipeline's contract). CommitAsync sends an atomic batch without
  // waiting for it to be durable and returns its sequence number; the store applies them in the
  // order issued, so every durable state is a prefix of what was issued. It may wait when too
  // much is in flight (backpressure). Any failed or lost commit poisons the store: that
  // CommitAsync, or every later one, and every WaitDurable/Sync, fails with the first error.
  // Reads, Scan and ScanKeys at the head (lsn 0) see every commit issued before them
  // (read-your-writes: they wait for those that touch what they read).
  virtual absl::StatusOr<uint64_t> CommitAsync(uint64_t generation,
                                               const std::vector<PageMutation>& mutations) = 0;
  // CommitAsync for a commit that nobody waits for soon (a namespace change, durable at the next
  // fsync/fsyncdir): the store may hand it to a background sender instead of sending it on the
  // caller's thread, so the caller returns without a network write. Same order and contract as
  // CommitAsync (the two kinds share one sequence).
  virtual absl::StatusOr<uint64_t> CommitInBackground(uint64_t generation,
                                                      const std::vector<PageMutation>& mutations) {
    return CommitAsync(generation, mutations);
  }
  // Waits until commit `seq` and everything issued before it are durable.
  virtual absl::Status WaitDurable(uint64_t seq) = 0;
  // Waits until everything issued so far is durable.
  virtual absl::Status Sync() = 0;
  // The sequence number of the last commit issued so far that touches one of `keys` and is not
  // yet durable (0: none), or the poison (CommitPipeline::LastPending). A store that sends
  // background commits itself may send what it queued now, as Sync does: the caller is about to
  // wait. Stores without pipelining: 0 (nothing is ever in flight).
  virtual absl::StatusOr<uint64_t> LastPending(const std::vector<std::string>& keys) {
    return uint64_t{0};
  }
  // Runs `done` exactly once, with OK once commit `seq` (0: everything issued so far) and every
  // commit before it are durable, or with the poison once the store is poisoned: at once, or
  // later on another thread (CommitPipeline::OnDurable; the thread may hold locks of the
  // store's own, e.g. its stream's while it records a broken stream). `done` must not block
  // and must not call into the store. Stores without pipelining (every
  // commit durable when it returns) run it at once with OK.
  virtual void OnDurable(uint64_t seq, std::function<void(const absl::Status&)> done) {
    done(absl::OkStatus());
  }
  // Poisons the store if its oldest commit in flight has waited longer than the store's ack
  // timeout (CommitPipeline::PoisonIfOverdue): the timeout of the OnDurable callbacks, which
  // no thread waits for. Called periodically by their owner (PageFs's background flusher).
  virtual void PoisonIfOverdue() {}
  // Acquires the writer generation (fencing any older writer); returns it.
  virtual absl::StatusOr<uint64_t> AcquireWriter() = 0;
  virtual absl::StatusOr<uint64_t> LsnForTimestamp(int64_t micros) = 0;
  virtual absl::StatusOr<uint64_t> HeadLsn() = 0;
};

struct GrpcPageStoreOptions {
  std::string address;
  std::string tenant_id;
  std::string timeline_id;
  std::string token;       // empty: no auth
  std::string tls_ca_pem;  // empty: plaintext
  // "unix:PATH": pipelined commits go over the pageserver's commit channel (--commit-socket)
  // instead of the CommitStream call; everything else stays on gRPC. Empty: CommitStream.
  std::string commit_channel;
  // Called after every Read or Scan RPC ("read", "scan", "scan_keys") with its duration and the
  // number of keys asked for (Read) or returned (Scan), for metrics. May be empty.
  std::function<void(const char* rpc, double seconds, size_t keys)> read_observer;
};

// The pageserver over gRPC.
std::unique_ptr<PageStore> NewGrpcPageStore(const GrpcPageStoreOptions& options);

}  // namespace pgbranch::pagefs
