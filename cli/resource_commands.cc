// `apply -f`, `connstr` and the hidden `debug advance-clock`.
#include "cli/resource_commands.h"

#include <cctype>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "cli/connection_info.h"
#include "cli/resource_util.h"
#include "common/status_macros.h"
#include "operator/model/json.h"

namespace pgbranch::cli {

using control::JsonString;
using web::json::value;

absl::Status RunApply(const CliContext& ctx, const std::string& file) {
  std::stringstream buf;
  if (file == "-") {
    buf << std::cin.rdbuf();
  } else {
    std::ifstream in(file);
    if (!in) return absl::NotFoundError(absl::StrCat("-f: cannot read ", file));
    buf << in.rdbuf();
  }
  PGB_ASSIGN_OR_RETURN(ApiClient client, ctx.Client());
  PGB_ASSIGN_OR_RETURN(value v, client.Post("/v1/apply", buf.str()));
  if (ctx.json()) {
    PrintJson(v);
    return absl::OkStatus();
  }
  // What the controller did with each object: created, configured (spec, labels or
  // annotations changed) or unchanged.
  if (v.has_field("results") && v.at("results").is_array()) {
    for (const value& r : v.at("results").as_array()) {
      std::string kind = JsonString(r, "kind");
      for (auto& c : kind) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::cout << kind << "/" << JsonString(r, "name") << " " << JsonString(r, "action") << "\n";
    }
    return absl::OkStatus();
  }
  for (const value& item : ItemsOf(v)) {  // a controller without "results"
    std::string kind = JsonString(item, "kind");
    for (auto& c : kind) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::cout << kind << "/" << JsonString(item.at("metadata"), "name")
              << (control::JsonInt(item.at("metadata"), "generation") == 1 ? " created"
                                                                           : " configured")
              << "\n";
  }
  return absl::OkStatus();
}

absl::Status RunConnstr(const CliContext& ctx, const std::string& endpoint) {
  PGB_ASSIGN_OR_RETURN(ApiClient client, ctx.Client());
  PGB_ASSIGN_OR_RETURN(value e, client.Get("/v1/endpoints/" + endpoint));
  PGB_ASSIGN_OR_RETURN(ConnectionInfo c, EndpointConnection(ctx, e));
  if (ctx.json()) {
    PrintJson(ConnectionJson(c));
  } else {
    std::cout << c.uri << "\n";
  }
  return absl::OkStatus();
}

absl::Status AdvanceClock(const CliContext& ctx, const std::string& by) {
  PGB_ASSIGN_OR_RETURN(ApiClient client, ctx.Client());
  PGB_RETURN_IF_ERROR(client.Post("/v1/debug/advance-clock?by=" + by).status());
  std::cout << "test clock advanced by " << by << "\n";
  return absl::OkStatus();
}

}  // namespace pgbranch::cli
