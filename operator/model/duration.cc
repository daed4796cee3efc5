#include "operator/model/duration.h"

#include <cctype>
#include <cstdlib>
#include <string>

namespace pgbranch::control {

absl::StatusOr<absl::Duration> ParseDuration(std::string_view text) {
  auto bad = [&](const char* why) {
    return absl::InvalidArgumentError("'" + std::string(text) + "' is not a duration (" + why +
                                      "); write it like 90s, 15m, 1h30m or 7d");
  };
  if (text.empty()) return bad("it is empty");
  absl::Duration total = absl::ZeroDuration();
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() &&
           (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) {
      ++i;
    }
    if (i == start) return bad("a number must come before each unit");
    std::string number(text.substr(start, i - start));
    char* end = nullptr;
    double value = std::strtod(number.c_str(), &end);
    if (end == nullptr || *end != '\0') return bad("malformed number");
    size_t unit_start = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    std::string_view unit = text.substr(unit_start, i - unit_start);
    absl::Duration scale;
    if (unit == "d") {
      scale = absl::Hours(24);
    } else if (unit == "h") {
      scale = absl::Hours(1);
    } else if (unit == "m") {
      scale = absl::Minutes(1);
    } else if (unit == "s") {
      scale = absl::Seconds(1);
    } else if (unit == "ms") {
      scale = absl::Milliseconds(1);
    } else if (unit.empty()) {
      return bad("a unit (d, h, m, s or ms) is missing");
    } else {
      return bad("units are d, h, m, s and ms");
    }
    total += value * scale;
  }
  return total;
}

std::string DurationToString(absl::Duration d) {
  if (d <= absl::ZeroDuration()) return "0s";
  std::string out;
  int64_t ms = absl::ToInt64Milliseconds(d);
  struct Unit {
    const char* name;
    int64_t ms;
  };
  for (Unit u : {Unit{"d", 86'400'000}, Unit{"h", 3'600'000}, Unit{"m", 60'000}, Unit{"s", 1000},
                 Unit{"ms", 1}}) {
    if (ms >= u.ms) {
      out += std::to_string(ms / u.ms) + u.name;
      ms %= u.ms;
    }
  }
  return out;
}

}  // namespace pgbranch::control
