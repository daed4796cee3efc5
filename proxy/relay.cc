#include "proxy/relay.h"

#include <poll.h>
#include <sys/socket.h>

#include <system_error>
#include <thread>

#include "absl/strings/str_cat.h"

namespace pgbranch::proxy {
namespace {

constexpr size_t kBufferSize = 64 * 1024;
constexpr size_t kCounterFlushBytes = 64 * 1024;

void Tally(size_t n, size_t* pending, prometheus::Counter* counter) {
  *pending += n;
  if (*pending >= kCounterFlushBytes) {
    counter->Increment(static_cast<double>(*pending));
    *pending = 0;
  }
}

short PollEvents(IoResult r) { return r == IoResult::kWantWrite ? POLLOUT : POLLIN; }

}  // namespace

// One direction of the polled relay: bytes read from `from` wait in buf[start, end) until
// written to `to`.
struct Relay::Direction {
  Stream* from;
  Stream* to;
  char* buf;
  size_t start = 0;
  size_t end = 0;
  bool eof = false;       // `from` has no more data
  bool shut = false;      // and `to` got our half-close
  short from_events = 0;  // what `from` waits for (0: nothing)
  short to_events = 0;    // what `to` waits for
  size_t* pending;
  prometheus::Counter* counter;
};

Relay::Relay(Stream* client, Stream* server, prometheus::Counter* client_to_server,
             prometheus::Counter* server_to_client, EpollRelay* epoll, SockmapRelay* sockmap)
    : client_(client),
      server_(server),
      client_to_server_(client_to_server),
      server_to_client_(server_to_client),
      epoll_(epoll),
      sockmap_(sockmap),
      buffers_(new char[2 * kBufferSize]) {}

Relay::~Relay() {
  if (pending_c2s_ > 0) client_to_server_->Increment(static_cast<double>(pending_c2s_));
  if (pending_s2c_ > 0) server_to_client_->Increment(static_cast<double>(pending_s2c_));
}

Relay::End Relay::RunStartup(BackendMessageScanner* scanner) { return RunPolled(scanner); }

Relay::End Relay::RunSession() {
  if (client_->tls()) return RunPolled(nullptr);
  if (sockmap_ != nullptr && sockmap_->Run(client_, server_) == SockmapRelay::Result::kClosed) {
    return End::kClosed;
  }
  if (epoll_ != nullptr) {
    if (!client_->SetTimeouts(0).ok()) return End::kError;
    epoll_->Run(client_, server_);
    return End::kClosed;
  }
  return RunBlocking();
}

Relay::End Relay::RunPolled(BackendMessageScanner* scanner) {
  if (!client_->SetNonBlocking(true).ok() || !server_->SetNonBlocking(true).ok()) {
    error_ = "cannot make the sockets non-blocking";
    return End::kError;
  }
  Direction dirs[2] = {
      {client_, server_, buffers_.get(), 0, 0, false, false, 0, 0, &pending_c2s_,
       client_to_server_},
      {server_, client_, buffers_.get() + kBufferSize, 0, 0, false, false, 0, 0, &pending_s2c_,
       server_to_client_},
  };
  Direction& s2c = dirs[1];
  while (true) {
    for (Direction& d : dirs) {
      d.from_events = d.to_events = 0;
      while (true) {
        if (d.start < d.end) {
          size_t n = 0;
          IoResult r = d.to->Write(d.buf + d.start, d.end - d.start, &n);
          if (r == IoResult::kOk) {
            d.start += n;
            continue;
          }
          if (r == IoResult::kWantRead || r == IoResult::kWantWrite) {
            d.to_events = PollEvents(r);
            break;
          }
          error_ = absl::StrCat("write failed: ", d.to->last_error());
          return End::kError;
        }
        d.start = d.end = 0;
        if (d.eof) {
          if (!d.shut) {
            d.to->ShutdownWrite();
            d.shut = true;
          }
          break;
        }
        // Once the session is established the rest belongs to RunSession().
        if (scanner != nullptr && scanner->ready()) break;
        size_t n = 0;
        IoResult r = d.from->Read(d.buf, kBufferSize, &n);
        if (r == IoResult::kOk) {
          d.end = n;
          Tally(n, d.pending, d.counter);
          if (scanner != nullptr && &d == &s2c && !scanner->Feed(d.buf, n).ok()) {
            error_ = "malformed message from the server";
            return End::kError;
          }
          continue;
        }
        if (r == IoResult::kEof) {
          d.eof = true;
          continue;
        }
        if (r == IoResult::kWantRead || r == IoResult::kWantWrite) {
          // TLS may hold decrypted bytes poll() cannot see: go round again without waiting.
          if (d.from->HasPending()) continue;
          d.from_events = PollEvents(r);
          break;
        }
        error_ = absl::StrCat("read failed: ", d.from->last_error());
        return End::kError;
      }
    }
    if (scanner != nullptr && scanner->ready() && dirs[0].start == dirs[0].end &&
        s2c.start == s2c.end) {
      return End::kReady;
    }
    // The server closed (and all it said is delivered): the session is over. A client's
    // half-close waits for the server to close in turn.
    if (s2c.shut) return End::kClosed;
    pollfd fds[2] = {{client_->fd(), 0, 0}, {server_->fd(), 0, 0}};
    fds[0].events = static_cast<short>(dirs[0].from_events | s2c.to_events);
    fds[1].events = static_cast<short>(s2c.from_events | dirs[0].to_events);
    // A socket we wait for nothing on must not wake us with POLLHUP over and over.
    if (fds[0].events == 0) fds[0].fd = -1;
    if (fds[1].events == 0) fds[1].fd = -1;
    if (fds[0].fd < 0 && fds[1].fd < 0) return End::kClosed;
    if (poll(fds, 2, -1) < 0 && errno != EINTR) {
      error_ = "poll failed";
      return End::kError;
    }
  }
}

Relay::End Relay::RunBlocking() {
  if (!client_->SetNonBlocking(false).ok() || !server_->SetNonBlocking(false).ok() ||
      !client_->SetTimeouts(0).ok()) {
    error_ = "cannot make the sockets blocking";
    return End::kError;
  }
  // Copies from -> to until EOF (true) or an error (false).
  auto pump = [](Stream* from, Stream* to, char* buf, size_t* pending,
                 prometheus::Counter* counter) {
    while (true) {
      size_t n = 0;
      IoResult r = from->Read(buf, kBufferSize, &n);
      if (r == IoResult::kEof) return true;
      if (r != IoResult::kOk) return false;
      Tally(n, pending, counter);
      size_t done = 0;
      while (done < n) {
        size_t wrote = 0;
        if (to->Write(buf + done, n - done, &wrote) != IoResult::kOk) return false;
        done += wrote;
      }
    }
  };
  // Server -> client on a second thread. When the server is done the session is over: shut both
  // sockets down, which also wakes the client -> server pump.
  std::thread s2c;
  try {
    s2c = std::thread([&] {
      pump(server_, client_, buffers_.get() + kBufferSize, &pending_s2c_, server_to_client_);
      client_->ShutdownWrite();
      client_->ShutdownBoth();
      server_->ShutdownBoth();
    });
  } catch (const std::system_error&) {
    return RunPolled(nullptr);  // out of threads: one thread does both directions
  }
  bool client_clean = pump(client_, server_, buffers_.get(), &pending_c2s_, client_to_server_);
  if (client_clean) {
    // The client half-closed: pass it on and let the server finish (it closes in turn).
    server_->ShutdownWrite();
  } else {
    client_->ShutdownBoth();
    server_->ShutdownBoth();
  }
  s2c.join();
  // Resets and errors are how many clients leave; they end the session like a close.
  return End::kClosed;
}

}  // namespace pgbranch::proxy
