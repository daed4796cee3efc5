#pragma once

#include <prometheus/counter.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "proxy/stream.h"

namespace pgbranch::proxy {

// The established-session data path for plain TCP: a few worker threads, each with an epoll set,
// relay every connection handed to them (level-triggered; one read and one write per message,
// epoll_wait amortised over every connection that became ready meanwhile). Compared with a
// blocking thread per direction this saves context switches when the machine is busy, which is
// when a proxy costs most.
//
// A connection is owned by one worker from Run() until it ends, so the data path takes no lock.
// Thread-safe: Run() may be called from many session threads at once.
class EpollRelay {
 public:
  static absl::StatusOr<std::unique_ptr<EpollRelay>> Create(int threads,
                                                            prometheus::Counter* client_to_server,
                                                            prometheus::Counter* server_to_client);
  ~EpollRelay();  // stops the workers; Run() must have returned everywhere

  // Relays between the two (plain TCP) sockets until the session ends; the calling thread sleeps
  // meanwhile. Switches both sockets to non-blocking mode. The streams stay owned by the caller.
  void Run(Stream* client, Stream* server);

 private:
  struct Conn;
  struct Worker;
  EpollRelay(prometheus::Counter* client_to_server, prometheus::Counter* server_to_client);
  void Loop(Worker* w);
  // Moves what can be moved now; false when the connection is over.
  bool Pump(Worker* w, Conn* c);

  prometheus::Counter* const client_to_server_;
  prometheus::Counter* const server_to_client_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<size_t> next_{0};
  char stale_tag_ = 0;  // its address marks epoll events of a finished connection
};

}  // namespace pgbranch::proxy
