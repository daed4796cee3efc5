#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "pageserver/proto/pageserver.pb.h"
#include "pageserver/storage/engine.h"

namespace pgbranch::pageserver {

// One round of pipelined commits, as PageService.CommitStream and the commit channel
// (CommitSocketServer) make them: consecutive requests of one connection, of one generation, at
// most kMaxRequests and kMaxBytes (a lone request may be bigger), committed by one
// Engine::CommitSequence (one log write and fdatasync, each request at its own LSN, in order)
// and answered only once durable. Not thread-safe: a round belongs to its committer.
class CommitRound {
 public:
  static constexpr size_t kMaxRequests = 256;
  static constexpr uint64_t kMaxBytes = 32ull << 20;

  // Whether `req` (counted as `bytes`) may join the round: same generation as its first
  // request, under the count bound, and under the bytes bound unless the round is empty.
  bool Accepts(const v1::CommitRequest& req, uint64_t bytes) const;
  void Add(v1::CommitRequest req, uint64_t bytes);

  bool empty() const { return requests_.empty(); }
  size_t size() const { return requests_.size(); }
  bool full() const { return requests_.size() >= kMaxRequests; }
  const v1::CommitRequest& front() const { return requests_.front(); }

  // Commits the round's requests (moving their mutations out) for `tenant`/`timeline`, in
  // order. A request naming another timeline ends the round: the requests before it are
  // committed, and the result is InvalidArgument naming `what` ("commit stream", ...). Fills
  // `results`, one per committed request. Returns the engine's error, else that mismatch.
  absl::Status Commit(storage::Engine* engine, const std::string& tenant,
                      const std::string& timeline, std::string_view what,
                      std::vector<storage::CommitResult>* results);

  // The answer of a committed request, and the answer carrying a failure.
  static v1::CommitResponse Answer(const storage::CommitResult& r);
  static v1::CommitResponse ErrorAnswer(absl::StatusCode code, std::string message);

 private:
  std::vector<v1::CommitRequest> requests_;
  uint64_t bytes_ = 0;  // as counted by the callers of Add
};

}  // namespace pgbranch::pageserver
