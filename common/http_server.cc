#include "common/http_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace pgbranch {
namespace {

constexpr size_t kMaxRequestBytes = 16 << 10;
constexpr size_t kMaxBodyBytes = 64 << 10;
constexpr int kReadTimeoutMs = 2000;

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    default:
      return "Error";
  }
}

void WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

}  // namespace

HttpServer::HttpServer(Handler handler)
    : handler_([h = std::move(handler)](const std::string& method, const std::string& path,
                                        const std::string&) { return h(method, path); }) {}

HttpServer::HttpServer(BodyHandler handler) : handler_(std::move(handler)), accepts_bodies_(true) {}

HttpServer::~HttpServer() { Stop(); }

absl::Status HttpServer::Start(const std::string& address, int avoid_port) {
  size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("status_listen '", address, "' is not host:port"));
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("status_listen ", address, ": ", gai_strerror(rc)));
  }
  auto listen_on = [&](int* bound_port) {
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 64) != 0) {
      int err = errno;
      if (fd >= 0) close(fd);
      errno = err;
      return -1;
    }
    sockaddr_storage bound{};
    socklen_t len = sizeof(bound);
    getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
    *bound_port =
        ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                          : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    return fd;
  };
  int fd = listen_on(&port_);
  if (fd >= 0 && port == 0 && avoid_port != 0 && port_ == avoid_port) {
    // The kernel handed out the port to avoid: bind again while this socket still holds it, so
    // that the second choice differs, then let it go.
    int again = listen_on(&port_);
    close(fd);
    fd = again;
  }
  if (fd < 0) {
    int err = errno;
    freeaddrinfo(res);
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address, ": ", strerror(err)));
  }
  freeaddrinfo(res);
  listen_fd_ = fd;
  thread_ = std::thread([this] { Serve(); });
  return absl::OkStatus();
}

void HttpServer::Stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  shutdown(listen_fd_, SHUT_RDWR);  // wakes the poll() at once
  thread_.join();
  close(listen_fd_);
  listen_fd_ = -1;
}

void HttpServer::Serve() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    int n = poll(&p, 1, 1000);  // Stop() shuts the socket down, which wakes it
    if (n <= 0 || stop_) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    HandleConnection(fd);
    close(fd);
  }
}

void HttpServer::HandleConnection(int fd) {
  std::string request;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kReadTimeoutMs);
  while (request.find("\r\n\r\n") == std::string::npos &&
         request.find("\n\n") == std::string::npos) {
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    deadline - std::chrono::steady_clock::now())
                                    .count());
    if (left <= 0 || request.size() > kMaxRequestBytes) return;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, left) <= 0) return;
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return;
    request.append(buf, static_cast<size_t>(n));
  }
  std::string line = request.substr(0, request.find_first_of("\r\n"));
  std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
  HttpResponse resp;
  std::string method;
  if (parts.size() < 2) {
    resp = {400, "application/json", "{\"message\":\"malformed request\"}"};
  } else {
    method = parts[0];
    std::string path = parts[1].substr(0, parts[1].find('?'));
    const bool with_body = method == "PUT" || method == "POST";
    if (method != "GET" && method != "HEAD" && !(accepts_bodies_ && with_body)) {
      resp = {405, "application/json",
              accepts_bodies_ ? "{\"message\":\"only GET, PUT and POST\"}"
                              : "{\"message\":\"only GET\"}"};
    } else {
      std::string body;
      if (with_body) {
        size_t header_end = request.find("\r\n\r\n");
        size_t skip = 4;
        if (header_end == std::string::npos) {
          header_end = request.find("\n\n");
          skip = 2;
        }
        body = request.substr(header_end + skip);
        size_t length = 0;
        std::string lower = absl::AsciiStrToLower(request.substr(0, header_end));
        if (size_t at = lower.find("\ncontent-length:"); at != std::string::npos) {
          length = static_cast<size_t>(std::strtoull(lower.c_str() + at + 16, nullptr, 10));
        }
        if (length > kMaxBodyBytes) {
          resp = {413, "application/json", "{\"message\":\"body too large\"}"};
          length = 0;
          method.clear();
        }
        while (body.size() < length) {
          int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          deadline - std::chrono::steady_clock::now())
                                          .count());
          if (left <= 0) return;
          pollfd p{fd, POLLIN, 0};
          if (poll(&p, 1, left) <= 0) return;
          char buf[4096];
          ssize_t n = recv(fd, buf, sizeof(buf), 0);
          if (n <= 0) return;
          body.append(buf, static_cast<size_t>(n));
        }
        if (body.size() > length) body.resize(length);
      }
      if (!method.empty()) resp = handler_(method, path, body);
    }
  }
  std::string out = absl::StrCat(
      "HTTP/1.1 ", resp.status, " ", Reason(resp.status), "\r\nContent-Type: ", resp.content_type,
      "\r\nContent-Length: ", resp.body.size(), "\r\nConnection: close\r\n\r\n");
  if (method != "HEAD") out += resp.body;
  WriteAll(fd, out);
}

}  // namespace pgbranch
