#include "proxy/proxy_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "proxy/net_util.h"
#include "proxy/pg_protocol.h"

namespace pgbranch::proxy {
namespace {

std::string PeerName(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &in->sin_addr, buf, sizeof(buf));
    port = ntohs(in->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf));
    port = ntohs(in6->sin6_port);
  }
  return absl::StrCat(buf, ":", port);
}

}  // namespace

ProxyServer::ProxyServer(SessionConfig config, SessionDeps deps)
    : config_(std::move(config)), deps_(deps) {}

ProxyServer::~ProxyServer() {
  Stop(absl::Seconds(5));
  if (wake_fd_ >= 0) close(wake_fd_);
}

absl::Status ProxyServer::Start(const std::string& host, int port) {
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) return absl::InternalError(absl::StrCat("eventfd: ", std::strerror(errno)));
  int bound = 0;
  absl::StatusOr<int> fd = ListenTcp(host, port, &bound);
  if (!fd.ok()) return fd.status();
  host_ = host;
  config_.main_port = bound;
  if (config_.public_host.empty()) config_.public_host = host;
  {
    std::lock_guard<std::mutex> lock(mu_);
    main_fd_ = *fd;
  }
  acceptor_ = std::thread([this] { AcceptLoop(); });
  return absl::OkStatus();
}

void ProxyServer::Wakeup() {
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
}

absl::Status ProxyServer::ApplyRoutes(const RouteTable& table) {
  std::vector<std::string> errors;
  std::map<int, std::string> desired;
  for (const Route& r : table.routes) {
    if (r.port <= 0 || r.port > 65535 || !IsValidEndpointName(r.endpoint)) {
      errors.push_back(absl::StrCat("invalid route ", r.endpoint, " -> ", r.port));
      continue;
    }
    if (r.port == config_.main_port) {
      errors.push_back(absl::StrCat("route ", r.endpoint, " wants the main port ", r.port));
      continue;
    }
    auto [it, inserted] = desired.emplace(r.port, r.endpoint);
    if (!inserted && it->second != r.endpoint) {
      errors.push_back(
          absl::StrCat("port ", r.port, " routed to both ", it->second, " and ", r.endpoint));
    }
  }
  std::unique_lock<std::mutex> lock(mu_);
  if (stopping_) return absl::CancelledError("the proxy is stopping");
  if (main_fd_ < 0) return absl::FailedPreconditionError("the proxy is not started");
  for (auto it = listeners_.begin(); it != listeners_.end();) {
    if (desired.count(it->first) == 0) {
      LogInfo("Closed endpoint port",
              {{"endpoint", it->second.endpoint}, {"port", std::to_string(it->first)}});
      to_close_.push_back(it->second.fd);
      it = listeners_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [port, endpoint] : desired) {
    auto it = listeners_.find(port);
    if (it != listeners_.end()) {
      it->second.endpoint = endpoint;
      continue;
    }
    int bound = 0;
    absl::StatusOr<int> fd = ListenTcp(host_, port, &bound);
    if (!fd.ok()) {
      errors.push_back(absl::StrCat("endpoint ", endpoint, ": ", fd.status().message()));
      continue;
    }
    listeners_[port] = Listener{*fd, endpoint};
    LogInfo("Opened endpoint port", {{"endpoint", endpoint}, {"port", std::to_string(port)}});
  }
  uint64_t mine = ++generation_;
  Wakeup();
  cv_.wait(lock, [&] { return applied_generation_ >= mine || acceptor_done_; });
  deps_.metrics->SetRoutes(static_cast<int>(listeners_.size()));
  if (!errors.empty()) return absl::UnavailableError(absl::StrJoin(errors, "; "));
  return absl::OkStatus();
}

void ProxyServer::AcceptLoop() {
  std::vector<pollfd> fds;
  std::vector<std::string> endpoints;  // parallel to fds
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int fd : to_close_) close(fd);
      to_close_.clear();
      if (stopping_) {
        for (auto& [port, l] : listeners_) close(l.fd);
        listeners_.clear();
        if (main_fd_ >= 0) close(main_fd_);
        main_fd_ = -1;
        acceptor_done_ = true;
        cv_.notify_all();
        return;
      }
      applied_generation_ = generation_;
      cv_.notify_all();
      fds.assign(1, pollfd{wake_fd_, POLLIN, 0});
      endpoints.assign(1, "");
      fds.push_back(pollfd{main_fd_, POLLIN, 0});
      endpoints.push_back("");
      for (const auto& [port, l] : listeners_) {
        fds.push_back(pollfd{l.fd, POLLIN, 0});
        endpoints.push_back(l.endpoint);
      }
    }
    if (poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      LogError("poll on the listeners failed", {{"error", std::strerror(errno)}});
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    if (fds[0].revents != 0) {
      uint64_t n;
      (void)!read(wake_fd_, &n, sizeof(n));
    }
    for (size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents != 0) AcceptAll(fds[i].fd, endpoints[i]);
    }
  }
}

void ProxyServer::AcceptAll(int listen_fd, const std::string& endpoint) {
  while (true) {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    int fd = accept4(listen_fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        // EMFILE and friends: the connection stays queued; back off instead of spinning.
        LogWarning("Cannot accept a connection", {{"error", std::strerror(errno)}});
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      return;
    }
    auto* session = new Session(fd, endpoint, PeerName(ss), config_, deps_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      sessions_.insert(session);
    }
    try {
      std::thread([this, session] {
        session->Run();
        {
          std::lock_guard<std::mutex> lock(mu_);
          sessions_.erase(session);
          delete session;
        }
        cv_.notify_all();
      }).detach();
    } catch (const std::system_error& e) {
      LogWarning("Cannot start a thread for a connection", {{"error", e.what()}});
      std::lock_guard<std::mutex> lock(mu_);
      sessions_.erase(session);
      delete session;  // closes the client's socket
    }
  }
}

bool ProxyServer::Stop(absl::Duration grace) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!stopping_) {
    stopping_ = true;
    if (acceptor_.joinable()) {
      Wakeup();
      lock.unlock();
      acceptor_.join();
      lock.lock();
    }
  }
  for (Session* s : sessions_) s->Abort();
  return cv_.wait_for(lock, std::chrono::milliseconds(absl::ToInt64Milliseconds(grace)),
                      [this] { return sessions_.empty(); });
}

int ProxyServer::active_sessions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(sessions_.size());
}

}  // namespace pgbranch::proxy
