#include "pageserver/pagectl/args.h"

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace pgbranch::pagectl {
namespace {

constexpr char kUsagePayloadUrl[] = "type.pgbranch.io/pagectl.UsageError";

// Flags that take no value.
const std::set<std::string>& BooleanFlags() {
  static const auto* flags = new std::set<std::string>{"gc", "q", "quiet", "h", "help"};
  return *flags;
}

std::string Dashed(const std::string& name) {
  return name.size() == 1 ? absl::StrCat("-", name) : absl::StrCat("--", name);
}

}  // namespace

absl::Status UsageError(std::string_view message) {
  absl::Status status = absl::InvalidArgumentError(std::string(message));
  status.SetPayload(kUsagePayloadUrl, absl::Cord("1"));
  return status;
}

bool IsUsageError(const absl::Status& status) {
  return status.GetPayload(kUsagePayloadUrl).has_value();
}

absl::StatusOr<int64_t> ParseRfc3339Micros(const std::string& text) {
  absl::Time time;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, text, &time, &error)) {
    return UsageError(
        absl::StrCat("\"", text, "\" is no RFC 3339 time (like 2026-11-21T10:42:00Z): ", error));
  }
  return absl::ToUnixMicros(time);
}

absl::StatusOr<Args> Args::Parse(int argc, const char* const* argv,
                                 const std::set<std::string>& boolean_flags) {
  Args args;
  bool flags_done = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (flags_done || arg.size() < 2 || arg[0] != '-') {
      args.positional_.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_done = true;
      continue;
    }
    std::string name = arg.substr(arg[1] == '-' ? 2 : 1);
    std::optional<std::string> value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (name.empty()) return UsageError(absl::StrCat("malformed flag \"", arg, "\""));
    if (BooleanFlags().count(name) > 0 || boolean_flags.count(name) > 0) {
      if (value.has_value()) return UsageError(absl::StrCat(Dashed(name), " takes no value"));
      value = "true";
    } else if (!value.has_value()) {
      if (i + 1 >= argc) return UsageError(absl::StrCat(Dashed(name), " needs a value"));
      value = argv[++i];
    }
    if (!args.flags_.emplace(name, *value).second) {
      return UsageError(absl::StrCat(Dashed(name), " given twice"));
    }
  }
  return args;
}

std::string Args::Positional(size_t n) const {
  return n < positional_.size() ? positional_[n] : std::string();
}

std::optional<std::string> Args::Flag(const std::string& name) {
  used_.insert(name);
  auto it = flags_.find(name);
  if (it == flags_.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<std::string> Args::RequiredFlag(const std::string& name) {
  std::optional<std::string> value = Flag(name);
  if (!value.has_value() || value->empty()) {
    return UsageError(absl::StrCat(Dashed(name), " is required"));
  }
  return *value;
}

bool Args::Bool(const std::string& name) { return Flag(name).has_value(); }

absl::StatusOr<uint64_t> Args::Uint(const std::string& name, uint64_t fallback) {
  std::optional<std::string> value = Flag(name);
  if (!value.has_value()) return fallback;
  uint64_t v;
  if (!absl::SimpleAtoi(*value, &v) || value->empty() || (*value)[0] == '-' || (*value)[0] == '+') {
    return UsageError(
        absl::StrCat(Dashed(name), " wants an unsigned integer, not \"", *value, "\""));
  }
  return v;
}

absl::Status Args::CheckAllUsed(size_t max_positional) const {
  for (const auto& [name, value] : flags_) {
    if (used_.count(name) == 0) return UsageError(absl::StrCat("unknown flag ", Dashed(name)));
  }
  if (positional_.size() > max_positional) {
    return UsageError(absl::StrCat("unexpected argument \"", positional_[max_positional], "\""));
  }
  return absl::OkStatus();
}

}  // namespace pgbranch::pagectl
