#include "tests/bench/pagefs/recovery_phases.h"

#include <stdlib.h>

#include <cstdint>
#include <cstdio>

#include "absl/strings/numbers.h"

namespace pgbranch::pagefs_bench {
namespace {

// Milliseconds since an arbitrary origin (integers: a difference is exact) of the %m timestamp that
// begins the line at `line_start`
// ("YYYY-MM-DD HH:MM:SS.mmm"); negative if the line does not begin with one. Only differences
// between two lines of one restart are used, so the time zone does not matter.
int64_t LineTime(const std::string& log, size_t line_start) {
  int y, mo, d, h, mi, s, ms, n = 0;
  if (line_start >= log.size()) return -1;
  if (sscanf(log.c_str() + line_start, "%4d-%2d-%2d %2d:%2d:%2d.%3d%n", &y, &mo, &d, &h, &mi, &s,
             &ms, &n) != 7 ||
      n != 23) {
    return -1;
  }
  // Days from a civil date (proleptic Gregorian), so a restart across midnight still subtracts.
  y -= mo <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  int64_t days = era * 146097 + doe - 719468;
  return (days * 86400 + h * 3600 + mi * 60 + s) * 1000 + ms;
}

// The start of the line holding `pos`.
size_t LineStart(const std::string& log, size_t pos) {
  size_t nl = pos == 0 ? std::string::npos : log.rfind('\n', pos - 1);
  return nl == std::string::npos ? 0 : nl + 1;
}

// The LSN "X/Y" right after `pos`; negative if there is none.
double LsnAt(const std::string& log, size_t pos) {
  unsigned long long hi, lo;
  if (sscanf(log.c_str() + pos, "%llx/%llx", &hi, &lo) != 2) return -1;
  return static_cast<double>((hi << 32) | lo);
}

// Time of the line holding `pos`; negative if `pos` is npos or the line has no timestamp.
int64_t TimeOf(const std::string& log, size_t pos) {
  return pos == std::string::npos ? -1 : LineTime(log, LineStart(log, pos));
}

}  // namespace

RecoveryPhases ParseRecoveryPhases(const std::string& log) {
  RecoveryPhases out;
  const std::string starts = "redo starts at ", done = "redo done at ";
  size_t p0 = log.find(starts);
  if (p0 == std::string::npos) return out;
  size_t p1 = log.find(done, p0);
  int64_t t0 = TimeOf(log, p0), t1 = TimeOf(log, p1);
  if (t0 >= 0 && t1 >= t0) out.redo_s = (t1 - t0) / 1000.0;
  if (p1 != std::string::npos) {
    double l0 = LsnAt(log, p0 + starts.size()), l1 = LsnAt(log, p1 + done.size());
    if (l0 >= 0 && l1 >= l0) out.wal_bytes = l1 - l0;
  }
  size_t c0 = log.find("checkpoint starting: end-of-recovery", p0);
  size_t c1 = c0 == std::string::npos ? c0 : log.find("checkpoint complete", c0);
  int64_t ct0 = TimeOf(log, c0), ct1 = TimeOf(log, c1);
  if (ct0 >= 0 && ct1 >= ct0) out.checkpoint_s = (ct1 - ct0) / 1000.0;
  return out;
}

}  // namespace pgbranch::pagefs_bench
