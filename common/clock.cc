#include "common/clock.h"

#include <time.h>

namespace pgbranch {
namespace {

class RealClockImpl : public Clock {
 public:
  int64_t NowMicros() override {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
  }
};

}  // namespace

Clock* RealClock() {
  static RealClockImpl clock;
  return &clock;
}

}  // namespace pgbranch
