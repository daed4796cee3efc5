#include "pageserver/pagectl/tenant_commands.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace pgbranch::pagectl {
namespace {

using Stub = v1::PageService::StubInterface;

void PrintTenantTable(const CommandContext& ctx, const std::vector<const v1::Tenant*>& tenants) {
  Table table({"TENANT", "ROOT TIMELINE", "TIMELINES", "CREATED"});
  for (const v1::Tenant* t : tenants) {
    table.AddRow({t->tenant_id(), t->root_timeline_id(), absl::StrCat(t->timeline_count()),
                  FormatMicros(t->created_micros())});
  }
  table.Print(*ctx.out);
}

absl::Status Create(const CommandContext& ctx) {
  v1::CreateTenantRequest request;
  request.set_tenant_id(ctx.options->id);
  request.set_root_timeline_id(ctx.options->root_timeline);
  v1::Tenant tenant;
  PGB_RETURN_IF_ERROR(ctx.client->Call(&Stub::CreateTenant, request, &tenant));
  if (ctx.format == OutputFormat::kJson) return PrintJson(ctx, tenant);
  PrintTenantTable(ctx, {&tenant});
  return absl::OkStatus();
}

absl::Status List(const CommandContext& ctx) {
  v1::ListTenantsResponse response;
  PGB_RETURN_IF_ERROR(ctx.client->Call(&Stub::ListTenants, v1::ListTenantsRequest(), &response));
  if (ctx.format == OutputFormat::kJson) return PrintJson(ctx, response);
  std::vector<const v1::Tenant*> tenants;
  for (const v1::Tenant& t : response.tenants()) tenants.push_back(&t);
  PrintTenantTable(ctx, tenants);
  return absl::OkStatus();
}

absl::Status Delete(const CommandContext& ctx) {
  const std::string& id = ctx.options->target;
  v1::DeleteTenantRequest request;
  request.set_tenant_id(id);
  v1::DeleteTenantResponse response;
  PGB_RETURN_IF_ERROR(ctx.client->Call(&Stub::DeleteTenant, request, &response));
  *ctx.out << "Deleted tenant " << id << "\n";
  return absl::OkStatus();
}

}  // namespace

absl::Status RunTenantCommand(const CommandContext& ctx, const std::string& verb) {
  if (verb == "create") return Create(ctx);
  if (verb == "list") return List(ctx);
  if (verb == "delete") return Delete(ctx);
  return absl::InvalidArgumentError(absl::StrCat("unknown tenant command \"", verb, "\""));
}

}  // namespace pgbranch::pagectl
