#include "operator/kube/rest_kube_client.h"

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "operator/kube/kube_object.h"

namespace pgbranch::kube {

using web::http::http_request;
using web::http::http_response;
using web::http::method;
using web::http::methods;
using web::http::client::http_client;
using web::http::client::http_client_config;
using web::json::value;

namespace {

// The watch's HTTP timeout is an inactivity timeout in cpprest's asio client (reset on every
// chunk); the server ends the watch at timeoutSeconds, so allow some slack beyond it.
constexpr int kWatchSlackSeconds = 30;

struct Reply {
  int code = 0;
  std::string body;
};

std::string Encode(const std::string& segment) { return web::uri::encode_data_string(segment); }

absl::Status TransportError(const std::string& what, const std::exception& e,
                            const pplx::cancellation_token& token) {
  if (token.is_canceled()) return absl::CancelledError(absl::StrCat(what, ": cancelled"));
  return absl::UnavailableError(absl::StrCat(what, ": ", e.what()));
}

}  // namespace

struct RestKubeClient::Impl {
  web::uri base;
  KubeConfig config;
  Options options;
  std::unique_ptr<http_client> client;

  http_client_config MakeConfig(absl::Duration timeout) const {
    http_client_config c;
    c.set_timeout(std::chrono::microseconds(absl::ToInt64Microseconds(timeout)));
    c.set_validate_certificates(!config.insecure_skip_tls_verify);
    std::string ca = config.ca_pem;
    std::string cert = config.client_cert_pem;
    std::string key = config.client_key_pem;
    if (base.scheme() == "https") {
      c.set_ssl_context_callback([ca, cert, key](boost::asio::ssl::context& ctx) {
        try {
          if (!ca.empty()) ctx.add_certificate_authority(boost::asio::buffer(ca));
          if (!cert.empty()) {
            ctx.use_certificate_chain(boost::asio::buffer(cert));
            ctx.use_private_key(boost::asio::buffer(key), boost::asio::ssl::context::pem);
          }
        } catch (const std::exception& e) {
          LogError("Cannot load the Kubernetes TLS credentials", {{"error", e.what()}});
        }
      });
    }
    return c;
  }

  http_request MakeRequest(const method& m, const std::string& path_and_query) const {
    http_request req(m);
    req.set_request_uri(path_and_query);
    req.headers().add("Accept", "application/json");
    req.headers().add("User-Agent", options.user_agent);
    if (config.token_provider) {
      std::string token = config.token_provider();
      if (!token.empty()) req.headers().add("Authorization", absl::StrCat("Bearer ", token));
    }
    return req;
  }

  absl::StatusOr<Reply> Send(http_request req) {
    std::string what = absl::StrCat(req.method(), " ", req.request_uri().to_string());
    pplx::cancellation_token token = pplx::cancellation_token::none();
    try {
      http_response resp = client->request(req, token).get();
      Reply r;
      r.code = resp.status_code();
      r.body = resp.extract_utf8string(true).get();
      return r;
    } catch (const web::http::http_exception& e) {
      if (e.error_code() == std::errc::timed_out) {
        return absl::UnavailableError(absl::StrCat(what, " timed out"));
      }
      return TransportError(what, e, token);
    } catch (const std::exception& e) {
      return TransportError(what, e, token);
    }
  }

  // Sends and maps: 2xx -> the parsed body (null when empty), else the mapped Status.
  absl::StatusOr<value> Call(http_request req, bool create = false) {
    auto reply = Send(std::move(req));
    if (!reply.ok()) return reply.status();
    if (reply->code < 200 || reply->code >= 300) {
      return StatusFromHttp(reply->code, reply->body, create);
    }
    if (reply->body.empty()) return value::null();
    try {
      return value::parse(reply->body);
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("the API server sent invalid JSON: ", e.what()));
    }
  }
};

std::string RestKubeClient::Path(const Resource& r, const std::string& ns, const std::string& name,
                                 const std::string& subresource) {
  std::string path = r.group.empty() ? absl::StrCat("/api/", r.version)
                                     : absl::StrCat("/apis/", r.group, "/", r.version);
  if (!ns.empty()) absl::StrAppend(&path, "/namespaces/", Encode(ns));
  absl::StrAppend(&path, "/", r.plural);
  if (!name.empty()) absl::StrAppend(&path, "/", Encode(name));
  if (!subresource.empty()) absl::StrAppend(&path, "/", subresource);
  return path;
}

absl::Status RestKubeClient::StatusFromHttp(int code, const std::string& body, bool create) {
  std::string message;
  std::string reason;
  try {
    value v = value::parse(body);
    message = StringField(v, "message");
    reason = StringField(v, "reason");
  } catch (const std::exception&) {
  }
  if (message.empty()) {
    message = body.empty() ? absl::StrCat("HTTP ", code)
                           : absl::StrCat("HTTP ", code, ": ", body.substr(0, 300));
  }
  switch (code) {
    case 400:
    case 415:
    case 422:
      return absl::InvalidArgumentError(message);
    case 401:
      return absl::UnauthenticatedError(message);
    case 403:
      return absl::PermissionDeniedError(message);
    case 404:
      return absl::NotFoundError(message);
    case 405:
      return absl::UnimplementedError(message);
    case 409:
      if (reason == "AlreadyExists") return absl::AlreadyExistsError(message);
      if (reason == "Conflict") return absl::AbortedError(message);
      return create ? absl::AlreadyExistsError(message) : absl::AbortedError(message);
    case 410:
      return absl::OutOfRangeError(message);
    case 429:
      return absl::UnavailableError(message);
    default:
      if (code >= 500) return absl::UnavailableError(message);
      return absl::UnknownError(message);
  }
}

RestKubeClient::RestKubeClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RestKubeClient::~RestKubeClient() = default;

absl::StatusOr<std::unique_ptr<RestKubeClient>> RestKubeClient::New(const KubeConfig& config,
                                                                    Options options) {
  auto impl = std::make_unique<Impl>();
  try {
    impl->base = web::uri(config.server);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(config.source, ": bad server URL \"", config.server, "\": ", e.what()));
  }
  if (impl->base.scheme() != "https" && impl->base.scheme() != "http") {
    return absl::InvalidArgumentError(
        absl::StrCat(config.source, ": server URL must be http(s): ", config.server));
  }
  impl->config = config;
  impl->options = std::move(options);
  try {
    impl->client =
        std::make_unique<http_client>(impl->base, impl->MakeConfig(impl->options.request_timeout));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(config.source, ": ", e.what()));
  }
  return std::unique_ptr<RestKubeClient>(new RestKubeClient(std::move(impl)));
}

absl::StatusOr<value> RestKubeClient::Get(const Resource& r, const std::string& ns,
                                          const std::string& name) {
  return impl_->Call(impl_->MakeRequest(methods::GET, Path(r, ns, name)));
}

absl::StatusOr<ObjectList> RestKubeClient::List(const Resource& r, const std::string& ns,
                                                const ListOptions& options) {
  ObjectList out;
  std::string cont;
  do {
    web::uri_builder b(Path(r, ns));
    if (!options.label_selector.empty()) b.append_query("labelSelector", options.label_selector);
    if (!options.field_selector.empty()) b.append_query("fieldSelector", options.field_selector);
    if (options.limit > 0) b.append_query("limit", options.limit);
    if (!cont.empty()) b.append_query("continue", cont);
    auto page = impl_->Call(impl_->MakeRequest(methods::GET, b.to_string()));
    if (!page.ok()) return page.status();
    if (page->has_field("items") && page->at("items").is_array()) {
      for (const value& item : page->at("items").as_array()) out.items.push_back(item);
    }
    cont.clear();
    if (page->has_field("metadata")) {
      const value& meta = page->at("metadata");
      cont = StringField(meta, "continue");
      out.resource_version = StringField(meta, "resourceVersion");
    }
  } while (!cont.empty());
  return out;
}

absl::StatusOr<value> RestKubeClient::Create(const Resource& r, const std::string& ns,
                                             const value& object) {
  http_request req = impl_->MakeRequest(methods::POST, Path(r, ns));
  req.set_body(object);
  return impl_->Call(std::move(req), /*create=*/true);
}

absl::StatusOr<value> RestKubeClient::Update(const Resource& r, const std::string& ns,
                                             const value& object) {
  http_request req = impl_->MakeRequest(methods::PUT, Path(r, ns, NameOf(object)));
  req.set_body(object);
  return impl_->Call(std::move(req));
}

absl::StatusOr<value> RestKubeClient::UpdateStatus(const Resource& r, const std::string& ns,
                                                   const value& object) {
  http_request req = impl_->MakeRequest(methods::PUT, Path(r, ns, NameOf(object), "status"));
  req.set_body(object);
  return impl_->Call(std::move(req));
}

absl::StatusOr<value> RestKubeClient::Patch(const Resource& r, const std::string& ns,
                                            const std::string& name, PatchType type,
                                            const value& patch, const std::string& field_manager,
                                            const std::string& subresource) {
  web::uri_builder b(Path(r, ns, name, subresource));
  std::string content_type;
  switch (type) {
    case PatchType::kMerge:
      content_type = "application/merge-patch+json";
      break;
    case PatchType::kJson:
      content_type = "application/json-patch+json";
      break;
    case PatchType::kApply:
      content_type = "application/apply-patch+yaml";  // JSON is YAML
      b.append_query("force", "true");
      break;
  }
  if (!field_manager.empty()) b.append_query("fieldManager", field_manager);
  http_request req = impl_->MakeRequest(methods::PATCH, b.to_string());
  req.set_body(patch.serialize(), content_type);
  return impl_->Call(std::move(req));
}

absl::Status RestKubeClient::Delete(const Resource& r, const std::string& ns,
                                    const std::string& name, const std::string& propagation) {
  http_request req = impl_->MakeRequest(methods::DEL, Path(r, ns, name));
  if (!propagation.empty()) {
    value opts = value::object();
    opts["apiVersion"] = value::string("v1");
    opts["kind"] = value::string("DeleteOptions");
    opts["propagationPolicy"] = value::string(propagation);
    req.set_body(opts);
  }
  return impl_->Call(std::move(req)).status();
}

namespace {

// Shared between the RestWatch handle and its reader thread, so the handle may be destroyed
// from inside a callback (the thread then finishes on its own).
struct WatchState {
  std::unique_ptr<http_client> client;
  pplx::cancellation_token_source cts;
  http_response response;
  std::function<void(const WatchEvent&)> on_event;
  std::function<void(const absl::Status&)> on_end;
  std::atomic<bool> cancelled{false};
  std::string what;

  void Cancel() {
    if (cancelled.exchange(true)) return;
    cts.cancel();
    // Closing the body's write side wakes a read blocked on it even if the transport does not.
    try {
      response.body().streambuf().close(std::ios_base::out).wait();
    } catch (const std::exception&) {
    }
  }

  // One line of the stream: {"type": "...", "object": {...}}.
  void HandleLine(const std::string& line) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) return;
    value ev;
    try {
      ev = value::parse(line);
    } catch (const std::exception& e) {
      LogWarning("Skipped an unparsable watch event", {{"watch", what}, {"error", e.what()}});
      return;
    }
    std::string type = StringField(ev, "type");
    WatchEvent out;
    if (type == "ADDED") {
      out.type = WatchEventType::kAdded;
    } else if (type == "MODIFIED") {
      out.type = WatchEventType::kModified;
    } else if (type == "DELETED") {
      out.type = WatchEventType::kDeleted;
    } else if (type == "BOOKMARK") {
      out.type = WatchEventType::kBookmark;
    } else if (type == "ERROR") {
      out.type = WatchEventType::kError;
    } else {
      return;
    }
    out.object = ev.has_field("object") ? ev.at("object") : value::null();
    if (!cancelled.load()) on_event(out);
  }

  void Run() {
    absl::Status end;
    try {
      auto buf = response.body().streambuf();
      const auto eof = Concurrency::streams::char_traits<uint8_t>::eof();
      std::string pending;
      std::vector<uint8_t> chunk(64 * 1024);
      while (!cancelled.load()) {
        // Block for one byte, then take whatever else has arrived: events are handled as
        // their lines complete, never waiting for the body to end.
        auto c = buf.bumpc().get();
        if (c == eof) break;
        pending.push_back(static_cast<char>(c));
        size_t avail = std::min(buf.in_avail(), chunk.size());
        if (avail > 0) {
          size_t got = buf.getn(chunk.data(), avail).get();
          pending.append(reinterpret_cast<const char*>(chunk.data()), got);
        }
        size_t pos;
        while (!cancelled.load() && (pos = pending.find('\n')) != std::string::npos) {
          std::string line = pending.substr(0, pos);
          pending.erase(0, pos + 1);
          HandleLine(line);
        }
      }
      if (!cancelled.load() && !pending.empty()) HandleLine(pending);
    } catch (const std::exception& e) {
      if (!cancelled.load()) end = absl::UnavailableError(absl::StrCat(what, ": ", e.what()));
    }
    if (cancelled.load()) end = absl::CancelledError(absl::StrCat(what, ": cancelled"));
    on_end(end);
  }
};

class RestWatch : public Watch {
 public:
  explicit RestWatch(std::shared_ptr<WatchState> state) : state_(std::move(state)) {
    thread_ = std::thread([s = state_] { s->Run(); });
  }
  ~RestWatch() override {
    state_->Cancel();
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();
    } else if (thread_.joinable()) {
      thread_.join();
    }
  }
  void Cancel() override { state_->Cancel(); }

 private:
  std::shared_ptr<WatchState> state_;
  std::thread thread_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Watch>> RestKubeClient::StartWatch(
    const Resource& r, const std::string& ns, const WatchOptions& options,
    std::function<void(const WatchEvent&)> on_event,
    std::function<void(const absl::Status&)> on_end) {
  web::uri_builder b(Path(r, ns));
  b.append_query("watch", "1");
  if (!options.resource_version.empty()) {
    b.append_query("resourceVersion", options.resource_version);
  }
  if (options.allow_bookmarks) b.append_query("allowWatchBookmarks", "true");
  if (options.timeout_seconds > 0) b.append_query("timeoutSeconds", options.timeout_seconds);
  if (!options.label_selector.empty()) b.append_query("labelSelector", options.label_selector);
  if (!options.field_selector.empty()) b.append_query("fieldSelector", options.field_selector);

  auto state = std::make_shared<WatchState>();
  state->on_event = std::move(on_event);
  state->on_end = std::move(on_end);
  state->what = absl::StrCat("watch ", b.to_string());
  int timeout = (options.timeout_seconds > 0 ? options.timeout_seconds : 1800) + kWatchSlackSeconds;
  try {
    state->client =
        std::make_unique<http_client>(impl_->base, impl_->MakeConfig(absl::Seconds(timeout)));
    http_request req = impl_->MakeRequest(methods::GET, b.to_string());
    state->response = state->client->request(req, state->cts.get_token()).get();
  } catch (const std::exception& e) {
    return TransportError(state->what, e, state->cts.get_token());
  }
  int code = state->response.status_code();
  if (code != 200) {
    std::string body;
    try {
      body = state->response.extract_utf8string(true).get();
    } catch (const std::exception&) {
    }
    return StatusFromHttp(code, body, false);
  }
  return std::unique_ptr<Watch>(new RestWatch(std::move(state)));
}

}  // namespace pgbranch::kube
