#include "compute/spare_pagefs.h"

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/text_util.h"

namespace pgbranch::compute {

absl::StatusOr<SparePagefs> SparePagefs::Start(const std::string& bin, const std::string& dir) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    return absl::InternalError(absl::StrCat("socketpair: ", strerror(errno)));
  }
  SpawnOptions o;
  // The last argument only makes room in the command line, which pagefs rewrites to the
  // arguments it is handed (so ps and local mode's process scans show what it serves).
  o.argv = {bin, "--spare", dir, std::string(kCommandLineRoom, ' ')};
  o.pass_fd = fds[1];
  // As PagefsProcess starts it: if the agent dies, pagefs goes too.
  o.parent_death_signal = SIGTERM;
  absl::StatusOr<ChildProcess> child = ChildProcess::Spawn(o);
  close(fds[1]);
  if (!child.ok()) {
    close(fds[0]);
    return child.status();
  }
  SparePagefs spare;
  spare.bin_ = bin;
  spare.fd_ = fds[0];
  spare.child_ = std::move(*child);
  return spare;
}

SparePagefs::SparePagefs(SparePagefs&& other) noexcept
    : bin_(std::move(other.bin_)), fd_(other.fd_), child_(std::move(other.child_)) {
  other.fd_ = -1;
}

SparePagefs& SparePagefs::operator=(SparePagefs&& other) noexcept {
  if (this != &other) {
    Close();
    bin_ = std::move(other.bin_);
    fd_ = other.fd_;
    child_ = std::move(other.child_);
    other.fd_ = -1;
  }
  return *this;
}

SparePagefs::~SparePagefs() { Close(); }

void SparePagefs::Close() {
  if (fd_ >= 0) {
    close(fd_);  // the spare reads the end of its socket and exits 0
    fd_ = -1;
    child_.WaitFor(std::chrono::milliseconds(500));
  }
  child_ = ChildProcess();  // still running: SIGKILLed and reaped
}

absl::StatusOr<ChildProcess> SparePagefs::Hand(const std::string& log,
                                               const std::vector<std::string>& args) {
  if (fd_ < 0 || !child_.running() || child_.Poll()) {
    std::string why = child_.exited() ? child_.DescribeExit() : "not started";
    Close();
    return absl::UnavailableError(absl::StrCat("the spare pagefs is gone (", why, ")"));
  }
  std::vector<std::string> list = {log};
  list.insert(list.end(), args.begin(), args.end());
  const std::string m = EncodeArgList(list);
  size_t off = 0;
  while (off < m.size()) {
    ssize_t n = send(fd_, m.data() + off, m.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string err = strerror(errno);
      Close();
      return absl::UnavailableError(absl::StrCat("cannot hand the spare pagefs over: ", err));
    }
    off += static_cast<size_t>(n);
  }
  close(fd_);  // the end of the message
  fd_ = -1;
  return std::move(child_);
}

}  // namespace pgbranch::compute
