#include "pageserver/pagefs/commit_channel.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/frame_io.h"

namespace pgbranch::pagefs {

absl::StatusOr<std::string> CommitChannelPath(const std::string& address) {
  if (!absl::StartsWith(address, "unix:")) {
    return absl::InvalidArgumentError(
        absl::StrCat("--commit-channel must be unix:PATH (the pageserver's --commit-socket), not '",
                     address, "'"));
  }
  std::string path = address.substr(5);
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("--commit-channel unix:PATH needs an absolute PATH, not '", path, "'"));
  }
  if (path.size() + 1 > sizeof(sockaddr_un::sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("--commit-channel path is ", path.size(),
                                                   " bytes; a Unix socket path holds at most ",
                                                   sizeof(sockaddr_un::sun_path) - 1, ": ", path));
  }
  return path;
}

void SetCommitSendBuffer(int fd) {
  // Best effort: beyond net.core.wmem_max only with CAP_NET_ADMIN (SO_SNDBUFFORCE); either way the
  // kernel doubles the value for its bookkeeping.
  int bytes = kCommitSendBufferBytes;
  if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof(bytes)) != 0) {
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
  }
}

absl::StatusOr<int> ConnectCommitChannel(const std::string& address,
                                         const std::string& authorization,
                                         std::chrono::milliseconds wait) {
  absl::StatusOr<std::string> path = CommitChannelPath(address);
  if (!path.ok()) return path.status();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path->data(), path->size());
  auto deadline = std::chrono::steady_clock::now() + wait;
  while (true) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
    SetCommitSendBuffer(fd);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      std::string hello;
      AppendFrame(std::string(kCommitHello) + authorization, &hello);
      if (WriteAll(fd, hello)) return fd;
    }
    int e = errno;
    ::close(fd);
    if (std::chrono::steady_clock::now() >= deadline) {
      return absl::UnavailableError(absl::StrCat("cannot reach the pageserver's commit channel at ",
                                                 address, ": ", std::strerror(e)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace pgbranch::pagefs
