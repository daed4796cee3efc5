#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "pageserver/proto/pageserver.pb.h"
#include "pageserver/server/commit_request_view.h"
#include "pageserver/storage/engine.h"

namespace pgbranch::pageserver {

// One round of pipelined commits, as PageService.CommitStream and the commit channel
// (CommitSocketServer) make them: consecutive requests of one connection, of one generation, at
// most kMaxRequests and kMaxBytes (a lone request may be bigger), committed by one
// Engine::CommitSequence (one log write and fdatasync, each request at its own LSN, in order)
// and answered only once durable. Not thread-safe: a round belongs to its committer, which may
// Clear and reuse it (its vectors keep their capacity).
//
// The round holds its requests by reference (CommitRequestView, storage::MutationView): into a
// request message it owns (Add(v1::CommitRequest)), or into bytes its caller keeps valid until
// Commit returns (the commit channel's frames, parsed in place with ParseCommitRequest). No key
// or value is copied before the engine's log write and memtable.
class CommitRound {
 public:
  static constexpr size_t kMaxRequests = 256;
  static constexpr uint64_t kMaxBytes = 32ull << 20;

  // Whether a request of `generation` (counted as `bytes`) may join the round: same generation
  // as its first request, under the count bound, and under the bytes bound unless the round is
  // empty.
  bool Accepts(uint64_t generation, uint64_t bytes) const;
  bool Accepts(const v1::CommitRequest& req, uint64_t bytes) const {
    return Accepts(req.generation(), bytes);
  }
  // Adds a request the round keeps until Clear.
  void Add(v1::CommitRequest req, uint64_t bytes);
  // Adds a request parsed by ParseCommitRequest into mutations() (it must be the last parsed
  // there; its bytes stay valid until Commit returns).
  void Add(const CommitRequestView& req, uint64_t bytes);
  // Where ParseCommitRequest appends the mutations of the next request. A request not added
  // (Accepts said no) must be dropped with DropParsed(req).
  std::vector<storage::MutationView>* mutations() { return &mutations_; }
  void DropParsed(const CommitRequestView& req) { mutations_.resize(req.begin); }

  bool empty() const { return requests_.empty(); }
  size_t size() const { return requests_.size(); }
  bool full() const { return requests_.size() >= kMaxRequests; }
  // The first request's.
  std::string_view tenant_id() const { return requests_.front().tenant_id; }
  std::string_view timeline_id() const { return requests_.front().timeline_id; }
  // Empties the round for reuse.
  void Clear();

  // Commits the round's requests for `tenant`/`timeline`, in order. A request naming another
  // timeline ends the round: the requests before it are committed, and the result is
  // InvalidArgument naming `what` ("commit stream", ...). Fills `results`, one per committed
  // request. Returns the engine's error, else that mismatch.
  absl::Status Commit(storage::Engine* engine, const std::string& tenant,
                      const std::string& timeline, std::string_view what,
                      std::vector<storage::CommitResult>* results);

  // The answer of a committed request, and the answer carrying a failure.
  static v1::CommitResponse Answer(const storage::CommitResult& r);
  static v1::CommitResponse ErrorAnswer(absl::StatusCode code, std::string message);
  // The same answers as commit channel frames (AppendFrame of their serialization), encoded by
  // hand: no message is built per answer.
  static void AppendAnswerFrame(const storage::CommitResult& r, std::string* out);
  static void AppendErrorAnswerFrame(absl::StatusCode code, std::string_view message,
                                     std::string* out);

 private:
  std::deque<v1::CommitRequest> owned_;  // Add(v1::CommitRequest)'s; a deque never moves them
  std::vector<CommitRequestView> requests_;
  std::vector<storage::MutationView> mutations_;  // of every request, in order
  std::vector<size_t> ends_;                      // Commit's, kept for its capacity
  uint64_t bytes_ = 0;                            // as counted by the callers of Add
};

}  // namespace pgbranch::pageserver
