#include "pageserver/pagectl/admin_commands.h"

#include "common/status_macros.h"

namespace pgbranch::pagectl {

using Stub = v1::PageService::StubInterface;

absl::Status RunLsnAtCommand(const CommandContext& ctx) {
  v1::LsnForTimestampRequest request;
  PGB_ASSIGN_OR_RETURN(*request.mutable_tenant_id(), ctx.args->RequiredFlag("tenant"));
  PGB_ASSIGN_OR_RETURN(*request.mutable_timeline_id(), ctx.args->RequiredFlag("timeline"));
  PGB_RETURN_IF_ERROR(ctx.args->CheckAllUsed(2));
  std::string time = ctx.args->Positional(1);
  if (time.empty()) return UsageError("lsn-at needs a time (RFC 3339, like 2026-11-21T10:42:00Z)");
  PGB_ASSIGN_OR_RETURN(int64_t micros, ParseRfc3339Micros(time));
  request.set_time_micros(micros);
  v1::LsnForTimestampResponse response;
  PGB_RETURN_IF_ERROR(ctx.client->Call(&Stub::LsnForTimestamp, request, &response));
  if (ctx.format == OutputFormat::kJson) return PrintJson(ctx, response);
  *ctx.out << response.lsn() << "\n";
  return absl::OkStatus();
}

absl::Status RunMaintenanceCommand(const CommandContext& ctx) {
  v1::RunMaintenanceRequest request;
  request.set_gc(ctx.args->Bool("gc"));
  PGB_RETURN_IF_ERROR(ctx.args->CheckAllUsed(1));
  v1::RunMaintenanceResponse response;
  PGB_RETURN_IF_ERROR(ctx.client->Call(&Stub::RunMaintenance, request, &response));
  *ctx.out << (request.gc() ? "Ran maintenance with GC\n" : "Ran maintenance\n");
  return absl::OkStatus();
}

}  // namespace pgbranch::pagectl
