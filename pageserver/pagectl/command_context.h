#pragma once

#include <ostream>
#include <string>

#include <cstdint>
#include <optional>
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "pageserver/pagectl/client.h"
#include "pageserver/pagectl/output.h"

// What every pagectl command receives: its options (parsed and validated by main.cc with CLI11
// before any command runs), the pageserver client and the output settings.
namespace pgbranch::pagectl {

// The flags and arguments of every command; each command reads the ones it defines.
struct CommandOptions {
  std::string id;             // tenant create / timeline create --id
  std::string root_timeline;  // tenant create --root-timeline
  std::string tenant;         // --tenant
  std::string timeline;       // --timeline (lsn-at, import, export)
  std::string parent;         // timeline create --parent
  std::optional<uint64_t> lsn;
  std::optional<int64_t> at_micros;  // --at, an RFC 3339 time
  std::optional<uint64_t> history_seconds, history_bytes;
  std::string backup;  // timeline reset --backup
  std::string target;  // the positional argument: an ID, a TIMESTAMP or a DIR
  bool gc = false;
  std::string signing_key_file;             // token mint
  std::string token_scope = "tenant";       // token mint --scope
  std::optional<absl::Duration> token_ttl;  // token mint --ttl (none: never expires)
};

struct CommandContext {
  const CommandOptions* options = nullptr;
  const Client* client = nullptr;
  OutputFormat format = OutputFormat::kTable;
  bool quiet = false;  // no progress output
  std::ostream* out = nullptr;
};

// Prints `message` as JSON (the -o json output of a command).
absl::Status PrintJson(const CommandContext& ctx, const google::protobuf::Message& message);

}  // namespace pgbranch::pagectl
