#include "common/net_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace pgbranch::net {

absl::StatusOr<int> FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  if (port <= 0) return absl::InternalError("cannot find a free loopback port");
  return port;
}

absl::StatusOr<std::string> HttpGet(int port, const std::string& path, absl::Duration timeout) {
  return HttpRequest("GET", port, path, "", timeout);
}

absl::StatusOr<std::string> HttpRequest(const std::string& method, int port,
                                        const std::string& path, const std::string& body,
                                        absl::Duration timeout) {
  return HttpRequestTo("127.0.0.1", method, port, path, body, timeout);
}

absl::StatusOr<std::string> HttpRequestTo(const std::string& host, const std::string& method,
                                          int port, const std::string& path,
                                          const std::string& body, absl::Duration timeout) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  timeval tv = absl::ToTimeval(timeout);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat("not an IPv4 address: ", host));
  }
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return absl::UnavailableError(absl::StrCat("cannot connect to ", host, ":", port));
  }
  std::string req = absl::StrCat(method, " ", path, " HTTP/1.0\r\nHost: ", host, "\r\n",
                                 "Content-Length: ", body.size(), "\r\n\r\n", body);
  if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return absl::UnavailableError("cannot send the HTTP request");
  }
  std::string resp;
  char buf[16384];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) resp.append(buf, static_cast<size_t>(n));
  close(fd);
  size_t start = resp.find("\r\n\r\n");
  if (start == std::string::npos) return absl::UnavailableError("malformed HTTP response");
  int code = resp.size() > 12 ? std::atoi(resp.c_str() + 9) : 0;
  if (code < 200 || code >= 300) {
    return absl::FailedPreconditionError(absl::StrCat("HTTP ", code, ": ", resp.substr(start + 4)));
  }
  return resp.substr(start + 4);
}

}  // namespace pgbranch::net
