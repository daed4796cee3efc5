#include "proxy/epoll_relay.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"

namespace pgbranch::proxy {
namespace {

constexpr size_t kBufferSize = 64 * 1024;
constexpr size_t kCounterFlushBytes = 64 * 1024;
constexpr int kMaxEvents = 64;

}  // namespace

struct EpollRelay::Conn {
  struct Dir {
    Stream* from;
    Stream* to;
    char* buf;
    size_t start = 0;
    size_t end = 0;
    bool eof = false;
    bool shut = false;
    size_t pending = 0;  // bytes not yet added to the counter
    prometheus::Counter* counter;
  };
  std::unique_ptr<char[]> buffers{new char[2 * kBufferSize]};
  Dir dirs[2];
  uint32_t interest[2] = {EPOLLIN | EPOLLRDHUP, EPOLLIN | EPOLLRDHUP};  // client (0), server (1)
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;  // GUARDED_BY(mu)
};

struct EpollRelay::Worker {
  int epfd = -1;
  int wake_fd = -1;
  std::atomic<bool> stop{false};
  std::thread thread;
};

EpollRelay::EpollRelay(prometheus::Counter* client_to_server, prometheus::Counter* server_to_client)
    : client_to_server_(client_to_server), server_to_client_(server_to_client) {}

absl::StatusOr<std::unique_ptr<EpollRelay>> EpollRelay::Create(
    int threads, prometheus::Counter* client_to_server, prometheus::Counter* server_to_client) {
  std::unique_ptr<EpollRelay> relay(new EpollRelay(client_to_server, server_to_client));
  for (int i = 0; i < std::max(threads, 1); ++i) {
    auto w = std::make_unique<Worker>();
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->epfd < 0 || w->wake_fd < 0) {
      return absl::InternalError(absl::StrCat("epoll: ", std::strerror(errno)));
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;  // the wake-up descriptor
    epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wake_fd, &ev);
    Worker* raw = w.get();
    relay->workers_.push_back(std::move(w));
    raw->thread = std::thread([r = relay.get(), raw] { r->Loop(raw); });
  }
  return relay;
}

EpollRelay::~EpollRelay() {
  for (auto& w : workers_) {
    w->stop = true;
    uint64_t one = 1;
    (void)!write(w->wake_fd, &one, sizeof(one));
    if (w->thread.joinable()) w->thread.join();
    close(w->epfd);
    close(w->wake_fd);
  }
}

void EpollRelay::Run(Stream* client, Stream* server) {
  if (!client->SetNonBlocking(true).ok() || !server->SetNonBlocking(true).ok()) return;
  Conn c;
  c.dirs[0] = {client, server, c.buffers.get(), 0, 0, false, false, 0, client_to_server_};
  c.dirs[1] = {server, client,           c.buffers.get() + kBufferSize, 0, 0, false, false,
               0,      server_to_client_};
  Worker* w = workers_[next_.fetch_add(1, std::memory_order_relaxed) % workers_.size()].get();
  // The low bit of the pointer tells which socket fired (Conn is at least 8-byte aligned).
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.ptr = &c;
  bool added = epoll_ctl(w->epfd, EPOLL_CTL_ADD, client->fd(), &ev) == 0;
  ev.data.ptr = reinterpret_cast<char*>(&c) + 1;
  added = added && epoll_ctl(w->epfd, EPOLL_CTL_ADD, server->fd(), &ev) == 0;
  if (!added) {
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, client->fd(), nullptr);
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, server->fd(), nullptr);
    return;
  }
  std::unique_lock<std::mutex> lock(c.mu);
  c.cv.wait(lock, [&] { return c.done; });
  for (auto& d : c.dirs) {
    if (d.pending > 0) d.counter->Increment(static_cast<double>(d.pending));
  }
}

bool EpollRelay::Pump(Worker* w, Conn* c) {
  for (int i = 0; i < 2; ++i) {
    Conn::Dir& d = c->dirs[i];
    while (true) {
      if (d.start < d.end) {
        size_t n = 0;
        IoResult r = d.to->Write(d.buf + d.start, d.end - d.start, &n);
        if (r == IoResult::kOk) {
          d.start += n;
          continue;
        }
        if (r != IoResult::kWantWrite) return false;
        break;  // wait for EPOLLOUT on `to`; `from` is not read meanwhile (bounded buffering)
      }
      d.start = d.end = 0;
      if (d.eof) {
        if (!d.shut) {
          d.to->ShutdownWrite();
          d.shut = true;
        }
        break;
      }
      size_t n = 0;
      IoResult r = d.from->Read(d.buf, kBufferSize, &n);
      if (r == IoResult::kOk) {
        d.end = n;
        d.pending += n;
        if (d.pending >= kCounterFlushBytes) {
          d.counter->Increment(static_cast<double>(d.pending));
          d.pending = 0;
        }
        continue;
      }
      if (r == IoResult::kEof) {
        d.eof = true;
        continue;
      }
      if (r == IoResult::kWantRead) break;
      return false;
    }
  }
  // The server closed and all it said is delivered: the session is over.
  if (c->dirs[1].shut) return false;
  // Level-triggered interest per socket: readable while its direction can take more data,
  // writable while the other direction has bytes waiting for it. Usually unchanged: no syscall.
  for (int side = 0; side < 2; ++side) {
    const Conn::Dir& reader = c->dirs[side];      // reads from `side`
    const Conn::Dir& writer = c->dirs[1 - side];  // writes to `side`
    uint32_t want = 0;
    if (!reader.eof && reader.start == reader.end) want |= EPOLLIN | EPOLLRDHUP;
    if (writer.start < writer.end) want |= EPOLLOUT;
    if (want != c->interest[side]) {
      c->interest[side] = want;
      epoll_event ev{};
      ev.events = want;
      ev.data.ptr = reinterpret_cast<char*>(c) + side;
      epoll_ctl(w->epfd, EPOLL_CTL_MOD, reader.from->fd(), &ev);
    }
  }
  return true;
}

void EpollRelay::Loop(Worker* w) {
  epoll_event events[kMaxEvents];
  while (!w->stop.load(std::memory_order_relaxed)) {
    int n = epoll_wait(w->epfd, events, kMaxEvents, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    for (int i = 0; i < n; ++i) {
      void* tag = events[i].data.ptr;
      if (tag == &stale_tag_) continue;
      if (tag == nullptr) {
        uint64_t v;
        (void)!read(w->wake_fd, &v, sizeof(v));
        continue;
      }
      auto* c = reinterpret_cast<Conn*>(reinterpret_cast<uintptr_t>(tag) & ~uintptr_t{1});
      if (Pump(w, c)) continue;
      epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->dirs[0].from->fd(), nullptr);
      epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->dirs[1].from->fd(), nullptr);
      // Later events of this batch for `c` must not touch it once its owner frees it.
      for (int j = i + 1; j < n; ++j) {
        auto other = reinterpret_cast<uintptr_t>(events[j].data.ptr) & ~uintptr_t{1};
        if (other == reinterpret_cast<uintptr_t>(c)) events[j].data.ptr = &stale_tag_;
      }
      // Notify under the lock: once it is released the owner may destroy `c`.
      std::lock_guard<std::mutex> lock(c->mu);
      c->done = true;
      c->cv.notify_all();
    }
  }
}

}  // namespace pgbranch::proxy
