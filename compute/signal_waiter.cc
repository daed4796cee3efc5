#include "compute/signal_waiter.h"

#include <signal.h>
#include <time.h>

namespace pgbranch::compute {
namespace {

sigset_t WaitedSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGHUP);
  return set;
}

}  // namespace

void SignalWaiter::BlockSignals() {
  sigset_t set = WaitedSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

void SignalWaiter::Sleep(std::chrono::milliseconds timeout) {
  sigset_t set = WaitedSignals();
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count();
  timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  int sig = sigtimedwait(&set, nullptr, &ts);
  if (sig == SIGTERM || sig == SIGINT) {
    int expected = 0;
    stop_signal_.compare_exchange_strong(expected, sig);
  } else if (sig == SIGHUP) {
    reload_requested_ = true;
  }
}

}  // namespace pgbranch::compute
