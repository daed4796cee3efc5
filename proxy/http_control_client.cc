#include "proxy/http_control_client.h"

#include <chrono>
#include <map>
#include <mutex>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/cpprest.h"
#include "common/net_util.h"

namespace pgbranch::proxy {

using web::http::http_response;
using web::http::methods;
using web::http::status_codes;
using web::http::client::http_client;
using web::http::client::http_client_config;

struct HttpControlClient::Impl {
  std::string base_url;
  absl::Duration wake_timeout;
  std::optional<http_client> wake_client;
  std::optional<http_client> routes_client;
  std::optional<http_client> activity_client;
  pplx::cancellation_token_source cancel;

  // Where each endpoint was last woken, with its compute agent's status port: while the
  // controller is unreachable, a running endpoint stays reachable through it.
  struct Known {
    BackendAddress address;
    int status_port = 0;
  };
  std::mutex known_mu;
  std::map<std::string, Known> known;  // GUARDED_BY(known_mu)

  std::mutex mu;
  int64_t credentials_version = -1;                        // GUARDED_BY(mu)
  std::map<std::string, EndpointCredentials> credentials;  // GUARDED_BY(mu)

  // Keeps the credentials of `table` unless a newer table was seen already.
  void Remember(const RouteTable& table) {
    std::lock_guard<std::mutex> l(mu);
    if (table.version < credentials_version) return;
    credentials_version = table.version;
    credentials.clear();
    for (const Route& r : table.routes) {
      if (!r.verifier.empty()) credentials[r.endpoint] = {r.role, r.verifier};
    }
  }
  // GET /v1/routes?version=V&wait=W with `client`.
  absl::StatusOr<RouteTable> FetchRoutes(http_client& client, int64_t applied_version,
                                         int wait_seconds);
  std::optional<EndpointCredentials> Find(const std::string& endpoint) {
    std::lock_guard<std::mutex> l(mu);
    auto it = credentials.find(endpoint);
    if (it == credentials.end()) return std::nullopt;
    return it->second;
  }
};

namespace {

constexpr int kLongPollSlackSeconds = 15;

http_client_config ConfigWithTimeout(absl::Duration timeout) {
  http_client_config config;
  config.set_timeout(std::chrono::microseconds(absl::ToInt64Microseconds(timeout)));
  return config;
}

// The controller's `{"message": ...}`, else the raw body (shortened), else the status line.
std::string ErrorMessage(int code, const std::string& body) {
  try {
    web::json::value v = web::json::value::parse(body);
    if (v.is_object() && v.has_field("message") && v.at("message").is_string()) {
      return v.at("message").as_string();
    }
  } catch (const std::exception&) {
  }
  if (!body.empty()) return body.substr(0, 300);
  return absl::StrCat("HTTP ", code);
}

// Sends one request and returns (status code, body); cpprest exceptions become statuses.
absl::StatusOr<std::pair<int, std::string>> Send(http_client& client, const std::string& base,
                                                 web::http::http_request request,
                                                 const pplx::cancellation_token& token) {
  std::string what = absl::StrCat(request.method(), " ", base, request.request_uri().to_string());
  try {
    http_response response = client.request(request, token).get();
    std::string body = response.extract_utf8string(true).get();
    return std::make_pair(static_cast<int>(response.status_code()), std::move(body));
  } catch (const web::http::http_exception& e) {
    if (token.is_canceled()) return absl::CancelledError("the proxy is shutting down");
    if (e.error_code() == std::errc::timed_out) {
      return absl::DeadlineExceededError(absl::StrCat(what, " timed out"));
    }
    return absl::UnavailableError(
        absl::StrCat("cannot reach the controller (", what, "): ", e.what()));
  } catch (const pplx::task_canceled&) {
    return absl::CancelledError("the proxy is shutting down");
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat(what, " failed: ", e.what()));
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpControlClient>> HttpControlClient::Create(
    const std::string& base_url, absl::Duration wake_timeout) {
  auto impl = std::make_unique<Impl>();
  impl->base_url = base_url;
  while (!impl->base_url.empty() && impl->base_url.back() == '/') impl->base_url.pop_back();
  impl->wake_timeout = wake_timeout;
  try {
    web::uri uri(impl->base_url);
    if (uri.scheme() != "http" && uri.scheme() != "https") {
      return absl::InvalidArgumentError(
          absl::StrCat("--control: '", base_url, "' is not an http:// URL"));
    }
    impl->wake_client.emplace(uri, ConfigWithTimeout(wake_timeout));
    impl->routes_client.emplace(uri, ConfigWithTimeout(absl::Seconds(60 + kLongPollSlackSeconds)));
    impl->activity_client.emplace(uri, ConfigWithTimeout(absl::Seconds(5)));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("--control: '", base_url, "': ", e.what()));
  }
  return std::unique_ptr<HttpControlClient>(new HttpControlClient(std::move(impl)));
}

HttpControlClient::HttpControlClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpControlClient::~HttpControlClient() = default;

void HttpControlClient::Shutdown() { impl_->cancel.cancel(); }

absl::StatusOr<BackendAddress> HttpControlClient::Wake(const std::string& endpoint) {
  web::http::http_request request(methods::POST);
  request.set_request_uri(
      absl::StrCat("/v1/endpoints/", web::uri::encode_data_string(endpoint), "/wake"));
  auto sent = Send(*impl_->wake_client, impl_->base_url, request, impl_->cancel.get_token());
  if (!sent.ok() && absl::IsUnavailable(sent.status())) return WakeWithoutController(endpoint);
  if (!sent.ok()) {
    if (absl::IsDeadlineExceeded(sent.status())) {
      return absl::DeadlineExceededError(absl::StrCat("endpoint \"", endpoint,
                                                      "\" did not wake up within ",
                                                      absl::FormatDuration(impl_->wake_timeout)));
    }
    return sent.status();
  }
  auto& [code, body] = *sent;
  if (code == status_codes::NotFound) {
    return absl::NotFoundError(ErrorMessage(code, body));
  }
  if (code != status_codes::OK) {
    return absl::UnavailableError(ErrorMessage(code, body));
  }
  try {
    web::json::value v = web::json::value::parse(body);
    BackendAddress address;
    address.host = v.at("host").as_string();
    address.port = v.at("port").as_integer();
    if (address.host.empty() || address.port <= 0 || address.port > 65535) {
      return absl::UnavailableError(absl::StrCat("the controller returned no usable address for \"",
                                                 endpoint, "\": ", body.substr(0, 200)));
    }
    Impl::Known k;
    k.address = address;
    if (v.has_field("statusPort") && v.at("statusPort").is_integer()) {
      k.status_port = v.at("statusPort").as_integer();
    }
    std::lock_guard<std::mutex> lock(impl_->known_mu);
    impl_->known[endpoint] = k;
    return address;
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat(
        "the controller's wake answer is not valid: ", e.what(), ": ", body.substr(0, 200)));
  }
}

absl::StatusOr<std::optional<EndpointCredentials>> HttpControlClient::Credentials(
    const std::string& endpoint) {
  if (auto found = impl_->Find(endpoint)) return found;
  absl::StatusOr<RouteTable> table = impl_->FetchRoutes(*impl_->wake_client, 0, 0);
  if (!table.ok()) return std::optional<EndpointCredentials>();  // the wake will say why
  impl_->Remember(*table);
  return impl_->Find(endpoint);
}

absl::StatusOr<BackendAddress> HttpControlClient::WakeWithoutController(
    const std::string& endpoint) {
  Impl::Known k;
  {
    std::lock_guard<std::mutex> lock(impl_->known_mu);
    auto it = impl_->known.find(endpoint);
    if (it != impl_->known.end()) k = it->second;
  }
  // Trust the last address only if the compute there still runs and is this endpoint's: its
  // port may have gone to another endpoint's compute since.
  if (k.status_port > 0) {
    auto body =
        net::HttpRequestTo(k.address.host, "GET", k.status_port, "/status", "", absl::Seconds(2));
    if (body.ok()) {
      try {
        web::json::value v = web::json::value::parse(*body);
        if (v.at("endpoint").as_string() == endpoint && v.at("state").as_string() == "running") {
          return k.address;
        }
      } catch (const std::exception&) {
      }
    }
  }
  return absl::UnavailableError(
      absl::StrCat("the pgbranch controller is not running; run `pgbranch local up` (endpoint \"",
                   endpoint, "\" is not running, and only the controller can wake it)"));
}

absl::StatusOr<RouteTable> HttpControlClient::WatchRoutes(int64_t applied_version,
                                                          int wait_seconds) {
  absl::StatusOr<RouteTable> table =
      impl_->FetchRoutes(*impl_->routes_client, applied_version, wait_seconds);
  if (table.ok()) impl_->Remember(*table);
  return table;
}

absl::StatusOr<RouteTable> HttpControlClient::Impl::FetchRoutes(http_client& client,
                                                                int64_t applied_version,
                                                                int wait_seconds) {
  web::http::http_request request(methods::GET);
  request.set_request_uri(
      absl::StrCat("/v1/routes?version=", applied_version, "&wait=", wait_seconds));
  auto sent = Send(client, base_url, request, cancel.get_token());
  if (!sent.ok()) return sent.status();
  auto& [code, body] = *sent;
  if (code != status_codes::OK) return absl::UnavailableError(ErrorMessage(code, body));
  try {
    web::json::value v = web::json::value::parse(body);
    RouteTable table;
    const web::json::value& version = v.at("version");
    table.version =
        version.is_string() ? std::stoll(version.as_string()) : version.as_number().to_int64();
    if (v.has_field("routes") && !v.at("routes").is_null()) {
      for (const auto& r : v.at("routes").as_array()) {
        Route route;
        route.endpoint = r.at("endpoint").as_string();
        route.port = r.at("port").as_integer();
        if (r.has_field("role") && r.at("role").is_string()) route.role = r.at("role").as_string();
        if (r.has_field("verifier") && r.at("verifier").is_string()) {
          route.verifier = r.at("verifier").as_string();
        }
        table.routes.push_back(std::move(route));
      }
    }
    return table;
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat(
        "the controller's route table is not valid: ", e.what(), ": ", body.substr(0, 200)));
  }
}

absl::Status HttpControlClient::ReportActivity(const std::map<std::string, int>& connections) {
  web::json::value counts = web::json::value::object();
  for (const auto& [endpoint, n] : connections) counts[endpoint] = web::json::value::number(n);
  web::json::value body = web::json::value::object();
  body["connections"] = counts;
  web::http::http_request request(methods::POST);
  request.set_request_uri("/v1/proxy/activity");
  request.set_body(body);
  // Not cancelled by Shutdown(): the last report at shutdown tells the controller the
  // connections are gone.
  auto sent =
      Send(*impl_->activity_client, impl_->base_url, request, pplx::cancellation_token::none());
  if (!sent.ok()) return sent.status();
  if (sent->first / 100 != 2) {
    return absl::UnavailableError(
        absl::StrCat("activity report refused: ", ErrorMessage(sent->first, sent->second)));
  }
  return absl::OkStatus();
}

}  // namespace pgbranch::proxy
