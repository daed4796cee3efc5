#include "proxy/sockmap_relay.h"

#include <errno.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <chrono>
#include <thread>

#include "common/log.h"

namespace pgbranch::proxy {
namespace {

// How long a closing session waits for the kernel to forward what it already accepted.
constexpr auto kDrainTimeout = std::chrono::seconds(2);

// A socket's position in its two byte streams, from the kernel's TCP counters.
struct TcpPosition {
  uint64_t received = 0;  // bytes received (a received FIN counts one)
  uint64_t consumed = 0;  // received minus what waits in the receive queue
  uint64_t written = 0;   // bytes written into the socket (acked + still queued)
};

bool ReadTcpInfo(int fd, tcp_info* info) {
  socklen_t len = sizeof(*info);
  *info = tcp_info{};
  return getsockopt(fd, IPPROTO_TCP, TCP_INFO, info, &len) == 0 &&
         len >= offsetof(tcp_info, tcpi_bytes_received) + sizeof(info->tcpi_bytes_received);
}

// Reads the counters; retries until an ACK or a segment did not land between the calls.
bool ReadPosition(int fd, TcpPosition* pos) {
  for (int attempt = 0; attempt < 20; ++attempt) {
    tcp_info before, after;
    int inq = 0, outq = 0;
    if (!ReadTcpInfo(fd, &before) || ioctl(fd, SIOCINQ, &inq) != 0 ||
        ioctl(fd, SIOCOUTQ, &outq) != 0 || !ReadTcpInfo(fd, &after)) {
      return false;
    }
    if (before.tcpi_bytes_acked != after.tcpi_bytes_acked ||
        before.tcpi_bytes_received != after.tcpi_bytes_received) {
      continue;
    }
    pos->received = after.tcpi_bytes_received;
    pos->consumed = after.tcpi_bytes_received - static_cast<uint64_t>(inq);
    pos->written = after.tcpi_bytes_acked + static_cast<uint64_t>(outq);
    return true;
  }
  return false;
}

uint64_t Written(int fd) {
  TcpPosition p;
  return ReadPosition(fd, &p) ? p.written : 0;
}

// Bytes the kernel took from `from` since the splice: everything received after what user space
// had consumed, minus the FIN.
uint64_t Forwarded(int from, const TcpPosition& at_splice, bool fin) {
  tcp_info info;
  if (!ReadTcpInfo(from, &info)) return 0;
  uint64_t end = info.tcpi_bytes_received - (fin ? 1 : 0);
  return end > at_splice.consumed ? end - at_splice.consumed : 0;
}

// Waits until `to` has been handed `forwarded` bytes since the splice (the kernel forwards from
// a work queue, so a FIN can overtake the data it follows), `to` failed, or the timeout.
void Drain(int to, const TcpPosition& to_at_splice, uint64_t forwarded) {
  uint64_t target = to_at_splice.written + forwarded;
  auto deadline = std::chrono::steady_clock::now() + kDrainTimeout;
  auto pause = std::chrono::microseconds(50);
  while (Written(to) < target) {
    pollfd p{to, 0, 0};
    if (poll(&p, 1, 0) > 0 && (p.revents & (POLLERR | POLLHUP))) return;
    if (std::chrono::steady_clock::now() > deadline) {
      LogWarning("Spliced session closed before the kernel forwarded everything",
                 {{"missing_bytes", std::to_string(target - Written(to))}});
      return;
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(2000));
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<SockmapRelay>> SockmapRelay::Create(ProxyMetrics* metrics,
                                                                   uint32_t max_sessions) {
  absl::StatusOr<std::unique_ptr<BpfSockhash>> map = BpfSockhash::Create(2 * max_sessions);
  if (!map.ok()) return map.status();
  return std::unique_ptr<SockmapRelay>(new SockmapRelay(std::move(*map), metrics));
}

SockmapRelay::Result SockmapRelay::Run(Stream* client, Stream* server) {
  if (client->tls() || server->tls()) return Result::kNotSpliced;
  const int cfd = client->fd();
  const int sfd = server->fd();
  absl::StatusOr<uint64_t> client_key = BpfSockhash::SocketCookie(cfd);
  absl::StatusOr<uint64_t> server_key = BpfSockhash::SocketCookie(sfd);
  TcpPosition client_pos, server_pos;
  if (!client_key.ok() || !server_key.ok() || !ReadPosition(cfd, &client_pos) ||
      !ReadPosition(sfd, &server_pos)) {
    metrics_->SpliceResult("fallback");
    return Result::kNotSpliced;
  }
  // Server first (see the header). Bytes from the client go out of the server's socket and the
  // other way round.
  absl::Status s = map_->Insert(*client_key, sfd);
  if (s.ok()) {
    s = map_->Insert(*server_key, cfd);
    if (!s.ok()) map_->Remove(*client_key);
  }
  if (!s.ok()) {
    LogWarning("Cannot splice a session in the kernel; relaying it in user space",
               {{"error", s.ToString()}});
    metrics_->SpliceResult("fallback");
    return Result::kNotSpliced;
  }
  metrics_->SpliceResult("ok");
  metrics_->spliced_connections().Increment();

  // Push what arrived before the sockets joined the map through the program. The program
  // redirects or drops, so nothing is ever returned here; 0 is an early EOF (poll sees it).
  for (int fd : {cfd, sfd}) {
    char byte;
    ssize_t n = recv(fd, &byte, 1, MSG_DONTWAIT);
    if (n > 0) LogError("A spliced socket returned data to user space", {});
  }

  bool client_fin = false, server_fin = false;
  while (true) {
    pollfd fds[2] = {{cfd, POLLRDHUP, 0}, {sfd, POLLRDHUP, 0}};
    if (client_fin) fds[0].fd = -1;  // half-closed: wait for PostgreSQL to close in turn
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    short c = fds[0].revents, sv = fds[1].revents;
    // A reset, an error, or Session::Abort() (shutdown of both directions): over now.
    if ((c & (POLLERR | POLLHUP)) || (sv & POLLERR)) break;
    if (sv & (POLLRDHUP | POLLHUP)) {
      // PostgreSQL is done (it closes after its last message, e.g. a FATAL error): deliver
      // what it sent, then end the session.
      server_fin = true;
      Drain(cfd, client_pos, Forwarded(sfd, server_pos, true));
      break;
    }
    if (c & POLLRDHUP) {
      // The client half-closed (after Terminate, or it is leaving): deliver what it sent, pass
      // the FIN on and let PostgreSQL finish.
      client_fin = true;
      Drain(sfd, server_pos, Forwarded(cfd, client_pos, true));
      server->ShutdownWrite();
    }
  }
  map_->Remove(*client_key);
  map_->Remove(*server_key);
  client->ShutdownBoth();
  server->ShutdownBoth();
  metrics_->bytes_client_to_server().Increment(
      static_cast<double>(Forwarded(cfd, client_pos, client_fin)));
  metrics_->bytes_server_to_client().Increment(
      static_cast<double>(Forwarded(sfd, server_pos, server_fin)));
  metrics_->spliced_connections().Decrement();
  return Result::kClosed;
}

}  // namespace pgbranch::proxy
