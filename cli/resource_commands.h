#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "cli/cli_context.h"

// The day-to-day commands: `apply -f`, `branch ...`, `endpoint ...`, `connstr`, and the hidden
// `debug advance-clock` of the test clock. Their options are parsed and validated completely by
// cli/command_line.cc before any of these runs.
namespace pgbranch::cli {

struct BranchCreateOptions {
  std::string name;
  std::string parent;  // empty: a root branch (a new database)
  std::optional<uint64_t> lsn;
  std::string at;  // RFC 3339
  std::string ttl;
  std::string expire_time;
  bool no_expiry = false;
  bool protected_ = false;
  bool no_endpoint = false;
  std::string suspend_timeout;
  bool wait = true;  // --wait=false: return once the objects exist, without waiting for Ready
  absl::Time started = absl::Now();  // when the command started: "created in" counts from here
};

struct BranchUpdateOptions {
  std::string name;
  std::optional<bool> protected_;  // --protected / --no-protected
  std::string ttl;
  std::string expire_time;
  bool no_expiry = false;
};

struct EndpointCreateOptions {
  std::string name;
  std::string branch;
  std::string type = "read-write";  // or read-only
  std::optional<uint64_t> lsn;
  std::string at;
  std::string suspend_timeout;
  bool wait = true;  // --wait=false: return once the object exists
  absl::Time started = absl::Now();
};

absl::Status RunApply(const CliContext& ctx, const std::string& file);

absl::Status BranchCreate(const CliContext& ctx, const BranchCreateOptions& options);
absl::Status BranchUpdate(const CliContext& ctx, const BranchUpdateOptions& options);
absl::Status BranchDelete(const CliContext& ctx, const std::string& name);
absl::Status BranchReset(const CliContext& ctx, const std::string& name);
// `branch list [--tree]` and `branch get NAME` (branch_views.cc).
absl::Status BranchList(const CliContext& ctx, bool tree);
absl::Status BranchGet(const CliContext& ctx, const std::string& name);

absl::Status EndpointCreate(const CliContext& ctx, const EndpointCreateOptions& options);
absl::Status EndpointList(const CliContext& ctx);
absl::Status EndpointGet(const CliContext& ctx, const std::string& name);
absl::Status EndpointDelete(const CliContext& ctx, const std::string& name);
absl::Status EndpointSuspend(const CliContext& ctx, const std::string& name);
absl::Status EndpointStart(const CliContext& ctx, const std::string& name);

absl::Status RunConnstr(const CliContext& ctx, const std::string& endpoint);
absl::Status AdvanceClock(const CliContext& ctx, const std::string& by);

}  // namespace pgbranch::cli
