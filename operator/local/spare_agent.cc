#include "operator/local/spare_agent.h"

#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/process_util.h"

namespace pgbranch::cli {

SpareAgent::SpareAgent(std::string compute_bin, std::string root, std::string log,
                       absl::Duration refill_delay)
    : compute_bin_(std::move(compute_bin)),
      root_(std::move(root)),
      log_(std::move(log)),
      refill_delay_(refill_delay),
      start_after_(absl::Now()) {
  keeper_ = std::thread(&SpareAgent::Keep, this);
}

SpareAgent::~SpareAgent() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
    DropLocked();
  }
  cv_.notify_all();
  keeper_.join();
}

absl::StatusOr<pid_t> SpareAgent::Take(const std::string& config_path,
                                       const std::string& log_path) {
  std::lock_guard<std::mutex> l(mu_);
  if (pid_ < 0) return absl::UnavailableError("no spare agent is ready");
  const pid_t pid = pid_;
  int status = 0;
  if (::waitpid(pid, &status, WNOHANG) == pid) {
    ForgetLocked(absl::Now());  // reaped: it died before it was needed
    cv_.notify_all();
    return absl::UnavailableError("the spare agent had exited");
  }
  // One short send on an empty socket: all of it or an error (MSG_NOSIGNAL: no SIGPIPE when
  // the spare is gone).
  const std::string line = absl::StrCat(config_path, "\t", log_path, "\n");
  const bool sent =
      ::send(pipe_, line.data(), line.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(line.size());
  ForgetLocked(absl::Now() + refill_delay_);  // it reads one line, then the end of the pipe
  cv_.notify_all();
  if (!sent) {
    // It died meanwhile (EPIPE): reap it; the caller starts the agent itself.
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return absl::UnavailableError("the spare agent did not take the compute");
  }
  return pid;
}

void SpareAgent::Keep() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_) {
    const absl::Time now = absl::Now();
    if (pid_ < 0 && now >= start_after_) {
      if (!StartLocked()) start_after_ = now + absl::Seconds(10);  // e.g. no binary yet
      continue;
    }
    // A spare that exits while it waits (killed by someone, a binary that does not run) is
    // noticed here within a second, and replaced 5 s later (not in a tight loop).
    if (pid_ >= 0) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        ForgetLocked(now + absl::Seconds(5));
        continue;
      }
    }
    const absl::Duration wait =
        pid_ < 0 ? std::max(start_after_ - now, absl::Milliseconds(1)) : absl::Seconds(1);
    cv_.wait_for(l, absl::ToChronoNanoseconds(wait));
  }
}

bool SpareAgent::StartLocked() {
  // A socket pair rather than a pipe, for send()'s MSG_NOSIGNAL; the spare just read()s it.
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return false;
  absl::StatusOr<pid_t> pid =
      SpawnDetached({compute_bin_, kFlag, root_}, log_, /*daemon=*/false, fds[0]);
  ::close(fds[0]);
  if (!pid.ok()) {
    ::close(fds[1]);
    LogWarning("Cannot start a spare compute agent", {{"error", pid.status().ToString()}});
    return false;
  }
  pid_ = *pid;
  pipe_ = fds[1];
  return true;
}

void SpareAgent::ForgetLocked(absl::Time next_start) {
  ::close(pipe_);
  pipe_ = -1;
  pid_ = -1;
  start_after_ = next_start;
}

void SpareAgent::DropLocked() {
  if (pid_ < 0) return;
  const pid_t pid = pid_;
  ForgetLocked(absl::InfiniteFuture());  // the spare sees the end of its stdin and exits
  // Bounded: a spare that does not exit within 2 s (stopped by a debugger?) is killed.
  if (!WaitProcessGone(pid, 2)) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
}

}  // namespace pgbranch::cli
