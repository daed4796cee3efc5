#pragma once

#include <atomic>
#include <cstdint>

// Wall-clock source, injectable so tests never read the real clock.
namespace pgbranch {

class Clock {
 public:
  virtual ~Clock() = default;
  // Microseconds since the Unix epoch.
  virtual int64_t NowMicros() = 0;
};

// The real clock (CLOCK_REALTIME).
Clock* RealClock();

// A manually driven clock for tests. Thread-safe.
class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t start_micros = 1'700'000'000'000'000) : now_(start_micros) {}
  int64_t NowMicros() override { return now_.load(); }
  void Advance(int64_t micros) { now_.fetch_add(micros); }
  void Set(int64_t micros) { now_.store(micros); }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace pgbranch
