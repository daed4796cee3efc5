#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "proxy/control_client.h"
#include "proxy/session.h"

namespace pgbranch::proxy {

// The proxy's listeners and their connections: the main port plus one port per endpoint (from
// the controller's route table), all on the same host. One acceptor thread polls every
// listening socket; each accepted connection gets a Session on its own thread.
//
// Thread-safe. The SessionDeps components must outlive the server. If Stop() returns false
// (sessions still running after the grace period) the server must not be destroyed: exit the
// process instead.
class ProxyServer {
 public:
  ProxyServer(SessionConfig config, SessionDeps deps);
  ~ProxyServer();

  // Binds the main port (0: the kernel picks) and starts accepting.
  absl::Status Start(const std::string& host, int port);
  int main_port() const { return config_.main_port; }

  // Opens and closes per-endpoint listeners to match `table`; returns once every listener of
  // the table is open and every removed one closed. A port that cannot be bound is reported
  // (the others are applied anyway) so the caller can retry.
  absl::Status ApplyRoutes(const RouteTable& table);

  // Stops accepting (closes every listener), cuts every open connection and waits up to
  // `grace` for the sessions to end. True when all ended. Idempotent.
  bool Stop(absl::Duration grace);

  int active_sessions() const;

 private:
  struct Listener {
    int fd = -1;
    std::string endpoint;
  };

  void AcceptLoop();
  void AcceptAll(int listen_fd, const std::string& endpoint);
  void Wakeup();

  SessionConfig config_;
  const SessionDeps deps_;
  std::string host_;
  int wake_fd_ = -1;  // eventfd that interrupts the acceptor's poll()

  mutable std::mutex mu_;
  std::condition_variable cv_;
  int main_fd_ = -1;                   // GUARDED_BY(mu_)
  std::map<int, Listener> listeners_;  // GUARDED_BY(mu_); by port
  std::vector<int> to_close_;          // GUARDED_BY(mu_); closed by the acceptor
  uint64_t generation_ = 0;            // GUARDED_BY(mu_)
  uint64_t applied_generation_ = 0;    // GUARDED_BY(mu_)
  bool stopping_ = false;              // GUARDED_BY(mu_)
  bool acceptor_done_ = false;         // GUARDED_BY(mu_)
  std::set<Session*> sessions_;        // GUARDED_BY(mu_)
  std::thread acceptor_;
};

}  // namespace pgbranch::proxy
