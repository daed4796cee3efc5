#pragma once

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "google/protobuf/message.h"
#include "pageserver/pagectl/args.h"
#include "pageserver/pagectl/client.h"
#include "pageserver/pagectl/output.h"

// What every pagectl command receives: its arguments (positional words after the command name
// included), the pageserver client and the output settings.
namespace pgbranch::pagectl {

struct CommandContext {
  Args* args = nullptr;
  const Client* client = nullptr;
  OutputFormat format = OutputFormat::kTable;
  bool quiet = false;  // no progress output
  std::ostream* out = nullptr;
};

// Prints `message` as JSON (the -o json output of a command).
absl::Status PrintJson(const CommandContext& ctx, const google::protobuf::Message& message);

}  // namespace pgbranch::pagectl
