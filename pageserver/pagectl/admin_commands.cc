#include "pageserver/pagectl/admin_commands.h"

#include "common/status_macros.h"

namespace pgbranch::pagectl {

using Stub = v1::PageService::StubInterface;

absl::Status RunLsnAtCommand(const CommandContext& ctx) {
  v1::LsnForTimestampRequest request;
  request.set_tenant_id(ctx.options->tenant);
  request.set_timeline_id(ctx.options->timeline);
  request.set_time_micros(ctx.options->at_micros.value_or(0));
  v1::LsnForTimestampResponse response;
  PGB_RETURN_IF_ERROR(ctx.client->Call(&Stub::LsnForTimestamp, request, &response));
  if (ctx.format == OutputFormat::kJson) return PrintJson(ctx, response);
  *ctx.out << response.lsn() << "\n";
  return absl::OkStatus();
}

absl::Status RunMaintenanceCommand(const CommandContext& ctx) {
  v1::RunMaintenanceRequest request;
  request.set_gc(ctx.options->gc);
  v1::RunMaintenanceResponse response;
  PGB_RETURN_IF_ERROR(ctx.client->Call(&Stub::RunMaintenance, request, &response));
  *ctx.out << (request.gc() ? "Ran maintenance with GC\n" : "Ran maintenance\n");
  return absl::OkStatus();
}

}  // namespace pgbranch::pagectl
