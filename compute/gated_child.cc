#include "compute/gated_child.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace pgbranch::compute {

GatedChild::GatedChild(GatedChild&& other) noexcept { *this = std::move(other); }

GatedChild& GatedChild::operator=(GatedChild&& other) noexcept {
  if (this != &other) {
    Discard();
    child_ = std::move(other.child_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

GatedChild::~GatedChild() { Discard(); }

absl::StatusOr<GatedChild> GatedChild::Spawn(SpawnOptions options, const std::string& library) {
  if (options.env.empty()) return absl::InvalidArgumentError("a gated child needs its environment");
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return absl::InternalError(absl::StrCat("socketpair: ", strerror(errno)));
  }
  options.env.push_back(absl::StrCat("LD_PRELOAD=", library));
  options.env.push_back("PGBRANCH_START_GATE_FD=3");
  options.pass_fd = sv[1];
  absl::StatusOr<ChildProcess> child = ChildProcess::Spawn(options);
  close(sv[1]);
  if (!child.ok()) {
    close(sv[0]);
    return child.status();
  }
  GatedChild out;
  out.child_ = std::move(*child);
  out.fd_ = sv[0];
  return out;
}

absl::StatusOr<ChildProcess> GatedChild::Open(std::chrono::milliseconds timeout) {
  if (fd_ < 0) return absl::FailedPreconditionError("no gated child is held");
  // 'r' once the child's libraries are loaded and its constructor runs; EOF if it exited.
  pollfd p{fd_, POLLIN, 0};
  int r;
  do {
    r = poll(&p, 1, static_cast<int>(timeout.count()));
  } while (r < 0 && errno == EINTR);
  char c = 0;
  ssize_t n = r > 0 ? read(fd_, &c, 1) : -1;
  if (n != 1 || c != 'r') {
    Discard();
    return absl::UnavailableError(r == 0 ? "the gated child did not report within its timeout"
                                         : "the gated child exited before it was held (the "
                                           "start gate library did not load)");
  }
  c = 'g';
  ssize_t w;
  do {
    w = write(fd_, &c, 1);
  } while (w < 0 && errno == EINTR);
  if (w != 1) {
    Discard();
    return absl::UnavailableError("cannot open the start gate");
  }
  close(fd_);
  fd_ = -1;
  return std::move(child_);
}

void GatedChild::Discard() {
  if (fd_ < 0) return;
  close(fd_);  // the child reads EOF and exits
  fd_ = -1;
  if (child_.running() && !child_.WaitFor(std::chrono::seconds(1))) {
    child_.Signal(SIGKILL);
    child_.WaitFor(std::chrono::seconds(10));
  }
}

std::string StartGateLibraryNextToExecutable() {
  return FileNextToExecutable("libpgbranch_start_gate.so");
}

}  // namespace pgbranch::compute
