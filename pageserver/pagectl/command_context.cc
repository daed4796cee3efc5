#include "pageserver/pagectl/command_context.h"

#include "common/status_macros.h"

namespace pgbranch::pagectl {

absl::Status PrintJson(const CommandContext& ctx, const google::protobuf::Message& message) {
  PGB_ASSIGN_OR_RETURN(std::string json, ToJson(message));
  *ctx.out << json;
  if (json.empty() || json.back() != '\n') *ctx.out << "\n";
  return absl::OkStatus();
}

}  // namespace pgbranch::pagectl
