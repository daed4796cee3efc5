#include "cli/api_client.h"

#include "absl/strings/str_cat.h"
#include "cli/api_errors.h"
#include "operator/model/json.h"

namespace pgbranch::cli {
namespace {

// The local controller's HTTP API.
class HttpTransport : public ApiTransport {
 public:
  explicit HttpTransport(std::string base_url) : base_url_(std::move(base_url)) {}
  absl::StatusOr<web::json::value> Call(const std::string& method, const std::string& path,
                                        const std::string& body) const override;
  bool HoldsWaits() const override { return true; }

 private:
  std::string base_url_;
};

absl::StatusOr<web::json::value> HttpTransport::Call(const std::string& method,
                                                     const std::string& path,
                                                     const std::string& body) const {
  try {
    web::http::client::http_client_config config;
    config.set_timeout(std::chrono::seconds(120));
    web::http::client::http_client client(web::uri(base_url_), config);
    web::http::http_request req(method);
    req.set_request_uri(web::uri(path));
    if (!body.empty()) req.set_body(body, "application/yaml");
    web::http::http_response resp = client.request(req).get();
    std::string text = resp.extract_string(true).get();
    web::json::value v;
    try {
      v = text.empty() ? web::json::value::object() : web::json::value::parse(text);
    } catch (const std::exception&) {
      v = web::json::value::object();
      v["message"] = web::json::value::string(text);
    }
    int code = resp.status_code();
    if (code >= 200 && code < 300) return v;
    std::string message = control::JsonString(v, "message");
    if (message.empty()) message = absl::StrCat("HTTP ", code);
    absl::Status error;
    switch (code) {
      case 404:
        error = absl::NotFoundError(message);
        break;
      case 400:
        error = absl::InvalidArgumentError(message);
        break;
      case 409:
        error = control::JsonString(v, "reason") == "AlreadyExists"
                    ? absl::AlreadyExistsError(message)
                    : absl::FailedPreconditionError(message);
        break;
      case 503:
        error = absl::UnavailableError(message);
        break;
      default:
        error = absl::InternalError(message);
    }
    return WithApiErrorFields(error, control::JsonString(v, "field"),
                              control::JsonString(v, "detail"));
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("cannot reach the local controller at ", base_url_,
                                               " (", e.what(),
                                               "); start it with `pgbranch local up`"));
  }
}

}  // namespace

ApiClient::ApiClient(std::string base_url)
    : transport_(std::make_shared<HttpTransport>(std::move(base_url))) {}

absl::StatusOr<web::json::value> ApiClient::Get(const std::string& path) const {
  return transport_->Call(web::http::methods::GET, path, "");
}
absl::StatusOr<web::json::value> ApiClient::GetWhen(const std::string& path,
                                                    const std::string& wait) const {
  return Get(transport_->HoldsWaits() ? absl::StrCat(path, "?wait=", wait) : path);
}
absl::StatusOr<web::json::value> ApiClient::Post(const std::string& path,
                                                 const std::string& body) const {
  return transport_->Call(web::http::methods::POST, path, body);
}
absl::StatusOr<web::json::value> ApiClient::Delete(const std::string& path) const {
  return transport_->Call(web::http::methods::DEL, path, "");
}

}  // namespace pgbranch::cli
