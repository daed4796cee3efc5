#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <vector>

namespace pgbranch::pagefs {

// The fsync replies that wait for their commit to be durable (PageFs::Fsync's "reply later"),
// shared by PageFs and the callbacks it gives the store (PageStore::OnDurable), which may run
// after PageFs is gone (the store outlives it; its answer reader acknowledges on).
//
// Invariants:
//  - every reply added is run exactly once: by the Finish of its id, or by the caller of Close;
//  - once Close returned, nothing passed in runs any more: Close waits for the Finish calls that
//    are running, and later ones find the table closed and run nothing. PageFs closes it in its
//    destructor, so no store callback touches a PageFs after its destruction began;
//  - replies run outside the table's lock (they write to the FUSE device).
// Thread-safe.
class FsyncReplies {
 public:
  using Reply = std::function<void(int err)>;

  // Registers `reply`; returns its id (never 0), or 0 once closed (nothing registered: the caller
  // replies itself).
  uint64_t Add(Reply reply);
  // Takes reply `id` and runs `finish` with it, outside the lock; does nothing if the reply was
  // taken already or the table is closed. `finish` must run the reply (exactly once).
  void Finish(uint64_t id, const std::function<void(Reply& reply)>& finish);
  // Waits until no reply is registered or being finished (FlushAll, once everything issued is
  // durable or failed: each remaining reply is then being finished).
  void WaitIdle();
  // Closes the table: no Add succeeds and no Finish runs anything from now on. Waits for the
  // Finish calls running, then returns the replies never finished, for the caller to run.
  std::vector<Reply> Close();
  // The replies registered and not yet taken.
  size_t pending();

 private:
  std::mutex mu_;
  std::condition_variable idle_cv_;
  // Guarded by mu_.
  std::map<uint64_t, Reply> replies_;
  uint64_t next_id_ = 1;
  int finishing_ = 0;  // Finish calls running their `finish`
  bool closed_ = false;
};

}  // namespace pgbranch::pagefs
