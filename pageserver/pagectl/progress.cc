#include "pageserver/pagectl/progress.h"

#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "pageserver/pagectl/output.h"

namespace pgbranch::pagectl {
namespace {

constexpr absl::Duration kTtyInterval = absl::Milliseconds(250);
constexpr absl::Duration kLogInterval = absl::Seconds(10);

}  // namespace

Progress::Progress(std::string verb, bool enabled)
    : verb_(std::move(verb)),
      enabled_(enabled),
      tty_(isatty(STDERR_FILENO) == 1),
      start_(absl::Now()),
      last_print_(start_) {}

void Progress::AddBytes(uint64_t bytes) {
  bytes_ += bytes;
  MaybePrint();
}

std::string Progress::Line() const {
  double seconds = absl::ToDoubleSeconds(Elapsed());
  return absl::StrFormat("%s %d files, %s in %.1f s (%s)", verb_, files_, HumanBytes(bytes_),
                         seconds, HumanRate(seconds > 0 ? bytes_ / seconds : 0));
}

void Progress::MaybePrint() {
  if (!enabled_) return;
  absl::Time now = absl::Now();
  if (now - last_print_ < (tty_ ? kTtyInterval : kLogInterval)) return;
  last_print_ = now;
  std::string line = Line();
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  printed_ = true;
}

void Progress::Finish() {
  if (!enabled_) return;
  std::string line = Line();
  if (tty_ && printed_) std::fputs("\r\033[K", stderr);
  std::fprintf(stderr, "%s\n", line.c_str());
}

}  // namespace pgbranch::pagectl
