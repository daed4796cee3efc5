// PageService.CommitStream: pipelined commits over one bidirectional stream.
//
// Two threads per stream (the handler's and a helper) share two roles: the reader (reads the
// next request into a queue) and the committer (takes everything queued as one round --
// consecutive requests of one generation, bounded in count and bytes -- commits it with
// Engine::CommitSequence, in order, each request at its own LSN, one log write and fdatasync for
// the round, and answers each request in order). A thread that has read a request while no round
// is running commits it itself, and the other thread takes over reading: a lone commit is read,
// made durable and answered by one thread, with no handoff. Requests that arrive while a round is
// being made durable form the next round.
//
// Invariant: the requests of a stream are applied in the order sent, and never one after a
// request that failed. At most one thread reads and at most one commits (and writes answers) at
// a time. The first failure gets an answer carrying its error (the stream's last answer); no
// round is committed after it, whatever else arrives is dropped until the client half-closes,
// and the call ends with that error.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/hop_trace.h"
#include "common/status_macros.h"
#include "pageserver/server/commit_round.h"
#include "pageserver/server/page_service.h"

namespace pgbranch::pageserver {
namespace {

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
  bool reading = false;                    // a thread holds the reader role; guarded by mu
  bool committing = false;                 // a thread holds the committer role; guarded by mu
  bool eof = false;                        // the client half-closed or left; guarded by mu
  bool failed = false;                     // no round is committed any more; guarded by mu
};

}  // namespace

grpc::Status PageServiceImpl::CommitStream(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<v1::CommitResponse, v1::CommitRequest>* stream) {
  StreamQueue queue;
  // Of the committer role (only its holder touches them).
  absl::Status final_status;     // read after both threads are done
  std::string tenant, timeline;  // of the stream's first request
  bool authorized = false;

  // Commits one round and answers it. Committer role only; false once the stream failed.
  auto commit_round = [&](CommitRound& round) -> bool {
    if (tenant.empty() && timeline.empty()) {
      tenant = std::string(round.tenant_id());
      timeline = std::string(round.timeline_id());
    }
    HopTrace::Mark("srv_round", round.size());
    std::vector<storage::CommitResult> results;
    grpc::Status gs = HandleFn("CommitStream", ctx, tenant, timeline, [&]() -> absl::Status {
      if (!authorized) {
        PGB_RETURN_IF_ERROR(Authorize(ctx, false, tenant, timeline));
        authorized = true;
      }
      return round.Commit(engine_, tenant, timeline, "commit stream", &results);
    });
    bool write_ok = true;
    for (size_t i = 0; i < results.size(); ++i) {
      const storage::CommitResult& r = results[i];
      v1::CommitResponse resp = CommitRound::Answer(r);
      // The answers of one round go out together: each but the last only buffers (one
      // transport write per round instead of one per answer; the last, or an error after them,
      // flushes them all). A round is durable as a whole, so no answer waits for a later one.
      grpc::WriteOptions wo;
      if (i + 1 < results.size() && gs.ok()) wo.set_buffer_hint();
      bool written = stream->Write(resp, wo);
      HopTrace::Mark("srv_answered", r.lsn);
      if (!written) {
        write_ok = false;
        break;
      }
    }
    if (!gs.ok()) {
      if (write_ok) {
        stream->Write(CommitRound::ErrorAnswer(static_cast<absl::StatusCode>(gs.error_code()),
                                               gs.error_message()));
      }
      final_status =
          absl::Status(static_cast<absl::StatusCode>(gs.error_code()), gs.error_message());
    } else if (!write_ok) {
      // The client is gone: what it sent is applied in order up to here; stop.
      final_status = absl::CancelledError("the client left the commit stream");
    }
    return final_status.ok();
  };

  // Each thread takes whichever role is free and has work: committing what is queued first
  // (so that the thread which read a lone request commits it), else reading.
  auto work = [&] {
    std::unique_lock<std::mutex> lock(queue.mu);
    while (true) {
      if (!queue.committing && !queue.failed && !queue.requests.empty()) {
        CommitRound round;
        while (!queue.requests.empty()) {
          uint64_t b = RequestBytes(queue.requests.front());
          if (!round.Accepts(queue.requests.front(), b)) break;
          queue.bytes -= b;
          round.Add(std::move(queue.requests.front()), b);
          queue.requests.pop_front();
        }
        queue.committing = true;
        queue.cv.notify_all();  // the reader role is free (or room for the reader)
        lock.unlock();
        bool ok = commit_round(round);
        lock.lock();
        queue.committing = false;
        if (!ok) {
          queue.failed = true;
          queue.requests.clear();
          queue.bytes = 0;
        }
        queue.cv.notify_all();
        continue;
      }
      if (!queue.reading && !queue.eof && (queue.failed || queue.bytes < kMaxQueuedBytes)) {
        queue.reading = true;
        lock.unlock();
        v1::CommitRequest req;
        bool ok = stream->Read(&req);
        HopTrace::Mark("srv_read");
        lock.lock();
        queue.reading = false;
        if (!ok) {
          queue.eof = true;
        } else if (!queue.failed) {  // else dropped: nothing after a failure is applied
          queue.bytes += RequestBytes(req);
          queue.requests.push_back(std::move(req));
        }
        queue.cv.notify_all();
        continue;
      }
      if (queue.eof && !queue.reading && !queue.committing &&
          (queue.failed || queue.requests.empty())) {
        queue.cv.notify_all();
        return;
      }
      queue.cv.wait(lock);
    }
  };
  std::thread helper(work);
  work();
  helper.join();
  if (final_status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(final_status.code()),
                      std::string(final_status.message()));
}

}  // namespace pgbranch::pageserver
