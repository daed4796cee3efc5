// PageService.CommitStream: pipelined commits over one bidirectional stream.
//
// Two threads per stream. The handler's thread reads requests into a queue; a committer thread
// takes everything queued as one round (consecutive requests of one generation, bounded in count
// and bytes), commits it with Engine::CommitSequence -- in order, each request at its own LSN,
// one log write and fdatasync for the round -- and answers each request in order. Requests that
// arrive while a round is being made durable form the next round.
//
// Invariant: the requests of a stream are applied in the order sent, and never one after a
// request that failed. The first failure gets an answer carrying its error (the stream's last
// answer); the committer stops, the reader drops whatever else arrives until the client
// half-closes, and the call ends with that error.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "pageserver/server/page_service.h"

namespace pgbranch::pageserver {
namespace {

constexpr size_t kMaxRoundRequests = 256;
constexpr uint64_t kMaxRoundBytes = 32ull << 20;
constexpr uint64_t kMaxQueuedBytes = 64ull << 20;  // the reader waits above this

uint64_t RequestBytes(const v1::CommitRequest& r) {
  uint64_t n = 0;
  for (const auto& m : r.mutations()) n += m.key().size() + m.value().size() + 8;
  return n;
}

struct StreamQueue {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<v1::CommitRequest> requests;  // guarded by mu
  uint64_t bytes = 0;                      // of `requests`; guarded by mu
  bool eof = false;                        // the client half-closed or left; guarded by mu
  bool failed = false;                     // the committer stopped; guarded by mu
};

}  // namespace

grpc::Status PageServiceImpl::CommitStream(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<v1::CommitResponse, v1::CommitRequest>* stream) {
  StreamQueue queue;
  absl::Status final_status;  // written by the committer, read after it is joined
  std::thread committer([&] {
    std::string tenant, timeline;  // of the stream's first request
    bool authorized = false;
    while (true) {
      std::vector<v1::CommitRequest> round;
      {
        std::unique_lock<std::mutex> lock(queue.mu);
        queue.cv.wait(lock, [&] { return !queue.requests.empty() || queue.eof; });
        if (queue.requests.empty()) return;
        uint64_t bytes = 0;
        uint64_t generation = queue.requests.front().generation();
        while (!queue.requests.empty() && round.size() < kMaxRoundRequests &&
               queue.requests.front().generation() == generation &&
               (round.empty() || bytes + RequestBytes(queue.requests.front()) <= kMaxRoundBytes)) {
          uint64_t b = RequestBytes(queue.requests.front());
          bytes += b;
          queue.bytes -= b;
          round.push_back(std::move(queue.requests.front()));
          queue.requests.pop_front();
        }
        queue.cv.notify_all();  // room for the reader
      }
      if (tenant.empty() && timeline.empty()) {
        tenant = round[0].tenant_id();
        timeline = round[0].timeline_id();
      }
      std::vector<storage::CommitResult> results;
      grpc::Status gs = HandleFn("CommitStream", ctx, tenant, timeline, [&]() -> absl::Status {
        if (!authorized) {
          PGB_RETURN_IF_ERROR(Authorize(ctx, false, tenant, timeline));
          authorized = true;
        }
        std::vector<std::vector<storage::Mutation>> batches;
        batches.reserve(round.size());
        absl::Status mismatch;
        for (v1::CommitRequest& r : round) {
          if (r.tenant_id() != tenant || r.timeline_id() != timeline) {
            // Commit the requests before it, then fail with this one.
            mismatch = absl::InvalidArgumentError(
                absl::StrCat("a commit stream serves one timeline (", tenant, "/", timeline,
                             "); this request names ", r.tenant_id(), "/", r.timeline_id()));
            break;
          }
          std::vector<storage::Mutation> muts;
          muts.reserve(r.mutations_size());
          for (auto& m : *r.mutable_mutations()) {
            muts.push_back(
                {std::move(*m.mutable_key()), std::move(*m.mutable_value()), m.tombstone()});
          }
          batches.push_back(std::move(muts));
        }
        absl::Status s;
        if (!batches.empty()) {
          s = engine_->CommitSequence(tenant, timeline, round[0].generation(), &batches, &results);
        }
        return s.ok() ? mismatch : s;
      });
      bool write_ok = true;
      for (const storage::CommitResult& r : results) {
        v1::CommitResponse resp;
        resp.set_lsn(r.lsn);
        resp.set_commit_time_micros(r.time_micros);
        if (!stream->Write(resp)) {
          write_ok = false;
          break;
        }
      }
      if (!gs.ok()) {
        v1::CommitResponse resp;
        resp.set_error_code(static_cast<int>(gs.error_code()));
        resp.set_error_message(gs.error_message());
        if (write_ok) stream->Write(resp);
        final_status =
            absl::Status(static_cast<absl::StatusCode>(gs.error_code()), gs.error_message());
      } else if (!write_ok) {
        // The client is gone: what it sent is applied in order up to here; stop.
        final_status = absl::CancelledError("the client left the commit stream");
      }
      if (!final_status.ok()) {
        std::lock_guard<std::mutex> lock(queue.mu);
        queue.failed = true;
        queue.requests.clear();
        queue.bytes = 0;
        queue.cv.notify_all();
        return;
      }
    }
  });
  v1::CommitRequest req;
  while (stream->Read(&req)) {
    std::unique_lock<std::mutex> lock(queue.mu);
    queue.cv.wait(lock, [&] { return queue.failed || queue.bytes < kMaxQueuedBytes; });
    if (queue.failed) continue;  // dropped: nothing after a failure is applied
    queue.bytes += RequestBytes(req);
    queue.requests.push_back(std::move(req));
    req = v1::CommitRequest();
    queue.cv.notify_all();
  }
  {
    std::lock_guard<std::mutex> lock(queue.mu);
    queue.eof = true;
    queue.cv.notify_all();
  }
  committer.join();
  if (final_status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(final_status.code()),
                      std::string(final_status.message()));
}

}  // namespace pgbranch::pageserver
