#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Command-line arguments of pagectl: positional words and flags, which may come in any order.
// `--name value`, `--name=value` and `-o value` take a value; the boolean flags (kBooleanFlags)
// do not. `--` ends the flags. Each command takes the flags it knows and then calls
// CheckAllUsed(), so a misspelt flag is a usage error instead of being ignored.
namespace pgbranch::pagectl {

// A usage error: the caller prints the usage line and exits with status 2.
absl::Status UsageError(std::string_view message);
bool IsUsageError(const absl::Status& status);

// An RFC 3339 time ("2026-11-21T10:42:00Z", "2026-11-21T11:42:00.5+01:00") as microseconds since
// the Unix epoch; a usage error if malformed.
absl::StatusOr<int64_t> ParseRfc3339Micros(const std::string& text);

class Args {
 public:
  // Parses argv[1..argc). `boolean_flags` names more flags that take no value.
  static absl::StatusOr<Args> Parse(int argc, const char* const* argv,
                                    const std::set<std::string>& boolean_flags = {});

  const std::vector<std::string>& positional() const { return positional_; }
  // The n-th positional word, or "" if there are fewer.
  std::string Positional(size_t n) const;

  // The value of a flag (name without dashes), or nullopt. Marks the flag used.
  std::optional<std::string> Flag(const std::string& name);
  // The flag's value, or a usage error naming it.
  absl::StatusOr<std::string> RequiredFlag(const std::string& name);
  // True if a boolean flag was given. Marks the flag used.
  bool Bool(const std::string& name);
  // An unsigned decimal flag, `fallback` if absent; a usage error if malformed.
  absl::StatusOr<uint64_t> Uint(const std::string& name, uint64_t fallback);
  bool Has(const std::string& name) const { return flags_.count(name) > 0; }

  // A usage error for the first flag no one asked for, and for extra positional words beyond
  // `max_positional`.
  absl::Status CheckAllUsed(size_t max_positional) const;

 private:
  std::vector<std::string> positional_;
  std::map<std::string, std::string> flags_;
  std::set<std::string> used_;
};

}  // namespace pgbranch::pagectl
