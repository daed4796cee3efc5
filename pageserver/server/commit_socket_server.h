#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "pageserver/server/server_metrics.h"
#include "pageserver/server/token_auth.h"
#include "pageserver/storage/engine.h"

namespace pgbranch::pageserver {

// The commit channel (pageserver --commit-socket PATH, pagefs --commit-channel unix:PATH): the
// requests of PageService.CommitStream over a plain Unix stream socket, served by one thread per
// connection that blocks in read(), commits and writes the answers itself -- no completion queue,
// no thread handoff between the bytes arriving and the answer leaving.
//
// Wire format (docs/pagefs.md): every message is a frame, a 4-byte little-endian length then
// that many bytes. The client's first frame is the hello "pgbranch-commit/1" followed by a
// newline and the value of an authorization header ("Bearer TOKEN", or nothing). Every later
// client frame is a serialized v1::CommitRequest; every server frame a v1::CommitResponse,
// one per request, in order.
//
// Invariants (those of CommitStream): the requests of a connection are applied in the order
// sent, each at its own LSN, all of one timeline (the first request's), never one after a
// request that failed. The requests already received when a round starts (consecutive, of one
// generation, bounded in count and bytes) are committed as one round by
// Engine::CommitSequence (one log write and fdatasync, grouped with other writers by the
// engine) and answered only once durable. The first failure -- the engine's, a bad frame, a
// refused token -- is answered with a response carrying its error, then the server stops
// reading and closes the connection.
class CommitSocketServer {
 public:
  CommitSocketServer(storage::Engine* engine, const TokenAuth* auth, ServerMetrics* metrics)
      : engine_(engine), auth_(auth), metrics_(metrics) {}
  ~CommitSocketServer();

  // Binds `path` (an absolute path that fits in sockaddr_un; a stale socket file there is
  // replaced) and starts accepting.
  absl::Status Start(const std::string& path);
  // Stops accepting, breaks every connection and joins their threads.
  void Shutdown();

  // The connection threads not yet joined (running, or finished and not yet reaped). Tests.
  size_t ConnectionThreadsForTest();

 private:
  void AcceptLoop();
  void Serve(int fd);
  // Joins the connection threads that have finished. Acceptor only.
  void ReapFinished();

  storage::Engine* engine_;
  const TokenAuth* auth_;
  ServerMetrics* metrics_;
  std::string path_;
  int listen_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::mutex mu_;
  // Invariant: a connection's thread is in conn_threads_ from its accept until it is joined --
  // by the acceptor once its id is in finished_ (its last step), or by Shutdown. So the threads
  // kept are those running plus those finished since the last accept, never all ever started.
  std::set<int> conns_;                           // open connections; guarded by mu_
  std::map<uint64_t, std::thread> conn_threads_;  // by connection id; guarded by mu_
  std::vector<uint64_t> finished_;                // ids of exited threads; guarded by mu_
  uint64_t next_conn_id_ = 0;                     // acceptor only
};

}  // namespace pgbranch::pageserver
