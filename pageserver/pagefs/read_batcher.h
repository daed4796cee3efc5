#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "pageserver/pagefs/page_store.h"

namespace pgbranch::pagefs {

// Combines the page reads of concurrent callers (FUSE threads that missed the cache) into
// multi-key Read RPCs. At most `max_in_flight` RPCs run at a time; a read that arrives while they
// are all busy waits in a queue, and the next RPC to go carries every queued read (oldest first, up
// to `max_batch_keys` keys). So an idle mount pays no added latency (a read goes at once), and
// under load — the posix_fadvise prefetches of crash recovery, many backends missing at once —
// one round trip answers many reads instead of one each. No thread of its own: a caller whose
// turn comes sends the batch at the queue's head (which may hold other callers' reads) and wakes
// their owners.
//
// What a caller gets is what PageStore::Read would have given it alone:
//  - the values of its own keys, in its order;
//  - at the head (lsn 0), the store's read-your-writes for every key of the batch, so every
//    change issued before the caller's read (it was queued after them) is seen; a change issued
//    later may be seen too, which a caller must already allow for (PageFs's inode `version`);
//  - an error only of its own: if a combined RPC fails, each read in it is retried alone, so a
//    key that cannot be read (data loss, a request too large) fails only the read that asked.
// Reads at different LSNs are never combined. Thread-safe.
class ReadBatcher {
 public:
  struct Options {
    uint32_t max_in_flight = 2;    // Read RPCs running at once (>= 1)
    size_t max_batch_keys = 1024;  // keys of one combined RPC (a larger single read goes alone)
  };
  struct Stats {
    uint64_t reads = 0;           // Read calls
    uint64_t rpcs = 0;            // Read RPCs sent (retries alone included)
    uint64_t combined_reads = 0;  // reads that shared an RPC with another read
  };

  ReadBatcher(PageStore* store, Options options);

  absl::StatusOr<std::vector<std::optional<std::string>>> Read(uint64_t lsn,
                                                               std::vector<std::string> keys);
  Stats stats();

 private:
  struct Request {
    uint64_t lsn = 0;
    std::vector<std::string> keys;
    bool taken = false;  // in a batch (no longer queued)
    bool done = false;   // `result` is set
    absl::StatusOr<std::vector<std::optional<std::string>>> result;
  };
  // Takes the oldest queued read and the ones after it at the same LSN, while they fit.
  std::vector<Request*> TakeBatchLocked();
  // Sends one batch (holding no lock) and fills in the results of its reads.
  void Send(const std::vector<Request*>& batch);

  PageStore* const store_;
  const Options options_;
  std::mutex mu_;
  std::condition_variable cv_;  // a batch finished: its owners, and a waiting sender, may go
  std::deque<Request*> queue_;  // guarded by mu_; callers own the requests and wait for `done`
  uint32_t in_flight_ = 0;      // guarded by mu_
  Stats stats_;                 // guarded by mu_
};

}  // namespace pgbranch::pagefs
