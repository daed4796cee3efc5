#include "cli/lsn.h"

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace pgbranch::cli {
namespace {

// One half of "X/Y": 1 to 8 hex digits.
bool ParseHalf(const std::string& s, uint32_t* out) {
  if (s.empty() || s.size() > 8) return false;
  uint32_t v = 0;
  for (char c : s) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
    int d = absl::ascii_isdigit(static_cast<unsigned char>(c))
                ? c - '0'
                : absl::ascii_tolower(static_cast<unsigned char>(c)) - 'a' + 10;
    v = v * 16 + static_cast<uint32_t>(d);
  }
  *out = v;
  return true;
}

}  // namespace

absl::StatusOr<uint64_t> ParseLsn(std::string_view text) {
  const std::string t(absl::StripAsciiWhitespace(absl::string_view(text.data(), text.size())));
  if (size_t slash = t.find('/'); slash != std::string::npos) {
    uint32_t hi, lo;
    if (ParseHalf(t.substr(0, slash), &hi) && ParseHalf(t.substr(slash + 1), &lo)) {
      return (static_cast<uint64_t>(hi) << 32) | lo;
    }
  } else {
    uint64_t v;
    bool digits = !t.empty() && absl::c_all_of(t, [](char c) {
      return absl::ascii_isdigit(static_cast<unsigned char>(c));
    });
    if (digits && absl::SimpleAtoi(t, &v)) return v;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "\"", std::string(text),
      "\" is not an LSN: give one as `pgbranch branch get` shows it, in PostgreSQL's X/Y form "
      "(like 0/1A2B3C8) or as the decimal number (like 27443144)"));
}

std::string FormatLsn(uint64_t lsn) {
  return absl::StrFormat("%X/%X", static_cast<uint32_t>(lsn >> 32), static_cast<uint32_t>(lsn));
}

}  // namespace pgbranch::cli
