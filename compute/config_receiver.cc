#include "compute/config_receiver.h"

#include "absl/strings/str_cat.h"

namespace pgbranch::compute {
namespace {

std::string JsonMessage(const std::string& text) {
  std::string out = "{\"message\":\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"}";
}

}  // namespace

ConfigReceiver::ConfigReceiver()
    : http_([this](const std::string& method, const std::string& path, const std::string& body) {
        return Handle(method, path, body);
      }) {}

absl::Status ConfigReceiver::Start(const std::string& listen) { return http_.Start(listen); }

void ConfigReceiver::Stop() { http_.Stop(); }

std::optional<ComputeConfig> ConfigReceiver::config() {
  std::lock_guard<std::mutex> l(mu_);
  return config_;
}

HttpResponse ConfigReceiver::Handle(const std::string& method, const std::string& path,
                                    const std::string& body) {
  if (path == "/config" && (method == "PUT" || method == "POST")) {
    std::string unknown;
    absl::StatusOr<ComputeConfig> parsed = ParseComputeConfig(body, &unknown);
    if (!parsed.ok())
      return {400, "application/json", JsonMessage(std::string(parsed.status().message()))};
    std::lock_guard<std::mutex> l(mu_);
    if (config_) {
      return {409, "application/json",
              JsonMessage(absl::StrCat("already configured for endpoint ", config_->endpoint,
                                       "; a compute serves one endpoint"))};
    }
    config_ = std::move(*parsed);
    return {202, "application/json", "{\"state\":\"starting\"}"};
  }
  if (method != "GET" && method != "HEAD") {
    return {405, "application/json", JsonMessage("PUT /config, or GET /status, /readyz, /healthz")};
  }
  if (path == "/status") return {200, "application/json", "{\"state\":\"pooled\"}"};
  if (path == "/healthz") return {200, "text/plain", "ok\n"};
  if (path == "/readyz") return {503, "text/plain", "pooled: waiting for PUT /config\n"};
  return {404, "application/json", JsonMessage("not found: PUT /config, GET /status")};
}

}  // namespace pgbranch::compute
