#pragma once

#include <prometheus/counter.h>

#include <cstddef>
#include <memory>
#include <string>

#include "proxy/backend_message_scanner.h"
#include "proxy/epoll_relay.h"
#include "proxy/sockmap_relay.h"
#include "proxy/stream.h"

namespace pgbranch::proxy {

// Moves bytes between a client and its PostgreSQL server. Owns two 64 KiB buffers (allocated
// once per connection); the data path allocates nothing, takes no lock and logs nothing. Byte
// counts reach the Prometheus counters in chunks (every 64 KiB and at the end), not per message.
//
// One Relay serves one connection; not thread-safe (RunSession() uses a second thread of its
// own for plain TCP).
class Relay {
 public:
  enum class End {
    kReady,   // RunStartup(): the server sent ReadyForQuery and everything before it is delivered
    kClosed,  // a side closed the connection
    kError,   // a socket or TLS error (see error())
  };

  // `sockmap`: when set, RunSession() first tries to splice plain TCP sessions in the kernel.
  // `epoll`: when set, RunSession() hands plain TCP sessions to it (also when splicing fails).
  Relay(Stream* client, Stream* server, prometheus::Counter* client_to_server,
        prometheus::Counter* server_to_client, EpollRelay* epoll = nullptr,
        SockmapRelay* sockmap = nullptr);
  ~Relay();  // flushes the byte counts

  // Startup phase (authentication exchange): relays both ways with poll(), feeding what the
  // server sends to `scanner`, until the server's first ReadyForQuery has been delivered.
  // Switches both sockets to non-blocking mode.
  End RunStartup(BackendMessageScanner* scanner);

  // The established session, until either side ends it. Plain TCP: spliced in the kernel by
  // the SockmapRelay if one was given and it succeeds, else the shared EpollRelay if one was
  // given, else one blocking thread per direction (two syscalls per message). TLS: one poll()
  // loop (OpenSSL objects cannot be shared between threads).
  End RunSession();

  const std::string& error() const { return error_; }

 private:
  struct Direction;
  End RunPolled(BackendMessageScanner* scanner);
  End RunBlocking();

  Stream* client_;
  Stream* server_;
  prometheus::Counter* client_to_server_;
  prometheus::Counter* server_to_client_;
  EpollRelay* epoll_;
  SockmapRelay* sockmap_;
  std::unique_ptr<char[]> buffers_;
  std::string error_;
  // Bytes not yet added to the counters.
  size_t pending_c2s_ = 0;
  size_t pending_s2c_ = 0;
};

}  // namespace pgbranch::proxy
