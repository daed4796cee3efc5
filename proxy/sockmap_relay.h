#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "proxy/bpf_sockhash.h"
#include "proxy/proxy_metrics.h"
#include "proxy/stream.h"

namespace pgbranch::proxy {

// The established-session data path in the kernel: the client's and PostgreSQL's sockets are
// spliced through a BPF sockhash (BpfSockhash), so every message is forwarded by the kernel
// without waking the proxy. The session's thread only sleeps in poll() until a side closes,
// then waits for what the kernel still has to forward, removes the entries and shuts both sockets
// down (the Session closes them and keeps counting the connection until then).
//
// Invariants:
//  - only plain TCP sessions whose startup phase is over (Relay::RunStartup() returned kReady:
//    nothing buffered in user space) are spliced; TLS stays in user space;
//  - the server's socket enters the map first: PostgreSQL is idle after ReadyForQuery, while the
//    client may already be sending its first query (bytes that arrived before the client's socket
//    entered the map are pushed through the program by a non-blocking recv(), which runs the
//    verdict over the socket's receive queue);
//  - Run() returns kNotSpliced only when nothing was changed (or every change was undone before
//    any byte could be forwarded), so the caller continues with the user-space relay;
//  - byte counts for the metrics come from the sockets' TCP counters (tcp_info), not from the
//    data path.
//
// Thread-safe: Run() may be called from many session threads at once.
class SockmapRelay {
 public:
  enum class Result {
    kNotSpliced,  // fall back to the user-space relay
    kClosed,      // the session ran spliced and is over
  };

  // Sets up the sockhash and program; fails (with the reason) when the kernel refuses (no
  // privileges, no BPF, no sockmap support), in which case the caller uses the user-space relay.
  static absl::StatusOr<std::unique_ptr<SockmapRelay>> Create(ProxyMetrics* metrics,
                                                              uint32_t max_sessions = 32768);

  // Splices the two (plain TCP, established) sockets and waits until the session ends. The
  // streams stay owned by the caller; Stream::ShutdownBoth() from another thread (Session::Abort)
  // ends the wait.
  Result Run(Stream* client, Stream* server);

  // Sockets in the sockhash right now (two per spliced session).
  size_t MapEntries() const { return map_->CountEntries(); }

 private:
  SockmapRelay(std::unique_ptr<BpfSockhash> map, ProxyMetrics* metrics)
      : map_(std::move(map)), metrics_(metrics) {}

  std::unique_ptr<BpfSockhash> map_;
  ProxyMetrics* const metrics_;
};

}  // namespace pgbranch::proxy
