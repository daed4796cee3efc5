#include "operator/local/api_server.h"

#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/net_util.h"
#include "operator/model/duration.h"
#include "operator/model/field_error.h"
#include "operator/model/json.h"
#include "operator/model/manifest.h"

namespace pgbranch::cli {
namespace {

using web::http::methods;
using web::http::status_codes;
using web::json::value;

value Message(const std::string& m) {
  value v = value::object();
  v["message"] = value::string(m);
  return v;
}

// Every error reply: the sentence for a person, and its parts for a client that words it its
// own way (the CLI names its flag instead of the YAML field).
value ErrorBody(const absl::Status& s) {
  value v = Message(std::string(s.message()));
  v["field"] = value::string(control::ErrorField(s));
  v["detail"] = value::string(control::ErrorDetail(s));
  v["reason"] = value::string(control::ErrorReason(s));
  return v;
}

value ResourceJson(const control::Resource& r) {
  return std::holds_alternative<control::Branch>(r)
             ? control::ToJson(std::get<control::Branch>(r))
             : control::ToJson(std::get<control::Endpoint>(r));
}

value Items(value arr) {
  value v = value::object();
  v["items"] = std::move(arr);
  return v;
}

}  // namespace

web::http::status_code HttpStatusFor(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk:
      return status_codes::OK;
    case absl::StatusCode::kNotFound:
      return status_codes::NotFound;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return status_codes::BadRequest;
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return status_codes::Conflict;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kResourceExhausted:
      return status_codes::ServiceUnavailable;
    case absl::StatusCode::kDeadlineExceeded:
      return status_codes::GatewayTimeout;
    default:
      return status_codes::InternalError;
  }
}

ApiServer::ApiServer(Controller* controller, std::function<void(absl::Duration)> advance_clock)
    : controller_(controller), advance_clock_(std::move(advance_clock)) {}

ApiServer::~ApiServer() { Close(); }

absl::StatusOr<int> ApiServer::Listen(int port) {
  for (int attempt = 0; attempt < 20; ++attempt) {
    int p = port;
    if (p == 0) {
      auto free = net::FreeLoopbackPort();
      if (!free.ok()) return free.status();
      p = *free;
    }
    auto listener = std::make_unique<web::http::experimental::listener::http_listener>(
        web::uri(absl::StrCat("http://127.0.0.1:", p)));
    listener->support([this](web::http::http_request r) { Handle(std::move(r)); });
    try {
      listener->open().wait();
      listener_ = std::move(listener);
      return p;
    } catch (const std::exception& e) {
      if (port != 0) {
        return absl::UnavailableError(absl::StrCat("cannot listen on 127.0.0.1:", port, ": ",
                                                   e.what(), "; is another controller running?"));
      }
    }
  }
  return absl::UnavailableError("cannot find a free port for the controller API");
}

void ApiServer::Close() {
  if (!listener_) return;
  try {
    listener_->close().wait();
  } catch (const std::exception&) {
  }
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait_for(l, std::chrono::seconds(30), [this] { return in_flight_ == 0; });
  l.unlock();
  listener_.reset();
}

void ApiServer::Handle(web::http::http_request request) {
  {
    std::lock_guard<std::mutex> l(mu_);
    ++in_flight_;
  }
  struct Done {
    ApiServer* self;
    ~Done() {
      std::lock_guard<std::mutex> l(self->mu_);
      --self->in_flight_;
      self->cv_.notify_all();
    }
  } done{this};
  auto reply = [&](web::http::status_code code, const value& body) {
    try {
      request.reply(code, body).wait();
    } catch (const std::exception&) {
      // The client went away.
    }
  };
  auto fail = [&](const absl::Status& s) { reply(HttpStatusFor(s), ErrorBody(s)); };
  // GET of one branch or endpoint with ?wait=ready|running: the answer is held (up to 2 s)
  // until `reached`, so a waiting CLI asks once instead of every 10 ms (each request costs both
  // processes CPU that a starting compute needs on a small machine). The hold is woken by the
  // controller's changes, not a poll. Unknown values: no hold.
  auto hold = [&](const std::function<bool()>& reached) {
    controller_->WaitUntil(reached, absl::Seconds(2));
  };
  try {
    const std::string method = request.method();
    const std::string path = request.relative_uri().path();
    auto query = web::uri::split_query(request.relative_uri().query());
    std::vector<std::string> parts = absl::StrSplit(path, '/', absl::SkipEmpty());
    // parts: ["v1", collection, name?, action?]
    if (parts.empty() || parts[0] != "v1") return fail(absl::NotFoundError("unknown path " + path));
    parts.erase(parts.begin());
    LocalStore* store = controller_->store();
    const std::string& ns = controller_->options().ns;
    const std::string collection = parts.empty() ? "" : parts[0];
    const std::string name = parts.size() > 1 ? parts[1] : "";
    const std::string action = parts.size() > 2 ? parts[2] : "";

    if (collection == "status" && method == methods::GET) {
      value v = value::object();
      v["ok"] = value::boolean(true);
      v["pid"] = value::number(static_cast<int>(::getpid()));
      v["routesVersion"] = value::number(store->RoutesVersion());
      v["proxyAppliedVersion"] = value::number(controller_->ProxyAppliedVersion());
      return reply(status_codes::OK, v);
    }
    // apply: create or update; create: only new names (409 AlreadyExists otherwise). Both all
    // or nothing, checked before anything is stored.
    if ((collection == "apply" || collection == "create") && name.empty() &&
        method == methods::POST) {
      std::string body = request.extract_string(true).get();
      auto rs = control::ParseManifests(body);
      if (!rs.ok()) return fail(rs.status());
      for (const auto& r : *rs) {
        const bool is_branch = std::holds_alternative<control::Branch>(r);
        const auto& meta = is_branch ? std::get<control::Branch>(r).metadata
                                     : std::get<control::Endpoint>(r).metadata;
        if (meta.namespace_ != ns) {
          return fail(control::FieldError(
              absl::StatusCode::kInvalidArgument,
              control::ObjectName(is_branch ? "Branch" : "Endpoint", meta.name),
              "metadata.namespace",
              absl::StrCat("local mode has one namespace, \"", ns, "\"; drop metadata.namespace")));
        }
      }
      LocalStore::ApplyOptions options;
      options.create_only = collection == "create";
      auto applied = store->Apply(*rs, options);
      if (!applied.ok()) return fail(applied.status());
      value items = value::array(), results = value::array();
      size_t i = 0;
      for (const auto& a : *applied) {
        const bool is_branch = std::holds_alternative<control::Branch>(a.object);
        value result = value::object();
        result["kind"] = value::string(is_branch ? "Branch" : "Endpoint");
        result["name"] =
            value::string(is_branch ? std::get<control::Branch>(a.object).metadata.name
                                    : std::get<control::Endpoint>(a.object).metadata.name);
        result["action"] = value::string(LocalStore::ActionName(a.action));
        results[i] = result;
        items[i++] = ResourceJson(a.object);
      }
      value v = Items(items);
      v["results"] = results;
      return reply(status_codes::OK, v);
    }
    if (collection == "branches") {
      if (name.empty() && method == methods::GET) {
        value items = value::array();
        size_t i = 0;
        for (const auto& b : store->ListBranches(ns)) items[i++] = control::ToJson(b);
        return reply(status_codes::OK, Items(items));
      }
      if (!name.empty() && action.empty() && method == methods::GET) {
        if (query["wait"] == "ready") {
          hold([&] {
            auto b = store->GetBranch(ns, name);
            return !b || b->status.phase == control::kPhaseReady ||
                   b->status.phase == control::kPhaseFailed;
          });
        }
        auto b = store->GetBranch(ns, name);
        if (!b)
          return fail(absl::NotFoundError(absl::StrCat("branch \"", name, "\" does not exist")));
        return reply(status_codes::OK, control::ToJson(*b));
      }
      if (!name.empty() && action.empty() && method == methods::DEL) {
        absl::Status s = store->UserDeleteBranch(ns, name);
        if (!s.ok()) return fail(s);
        return reply(status_codes::OK, Message("deletion requested"));
      }
      // Body: {"to": RESTORE_POINT, "keepCurrentAs": NAME, "allowProtected": bool}.
      if (!name.empty() && action == "restore" && method == methods::POST) {
        value body = request.extract_json(true).get();
        if (!body.is_object() || !body.has_string_field("to") ||
            !body.has_string_field("keepCurrentAs")) {
          return fail(absl::InvalidArgumentError(
              "a restore needs \"to\" (the restore point) and \"keepCurrentAs\""));
        }
        LocalStore::RestoreRequest r;
        r.parent = name;
        r.restore_point = body.at("to").as_string();
        r.keep_as = body.at("keepCurrentAs").as_string();
        r.allow_protected =
            body.has_boolean_field("allowProtected") && body.at("allowProtected").as_bool();
        auto b = store->RequestRestore(ns, r);
        if (!b.ok()) return fail(b.status());
        return reply(status_codes::OK, control::ToJson(*b));
      }
      if (!name.empty() && action == "reset" && method == methods::POST) {
        auto b = store->RequestReset(ns, name);
        if (!b.ok()) return fail(b.status());
        return reply(status_codes::OK, control::ToJson(*b));
      }
    }
    if (collection == "endpoints") {
      if (name.empty() && method == methods::GET) {
        value items = value::array();
        size_t i = 0;
        for (const auto& e : store->ListEndpoints(ns)) items[i++] = control::ToJson(e);
        return reply(status_codes::OK, Items(items));
      }
      if (!name.empty() && action.empty() && method == methods::GET) {
        if (query["wait"] == "running") {
          hold([&] {
            auto e = store->GetEndpoint(ns, name);
            return !e || e->status.phase == control::kPhaseFailed ||
                   (e->status.phase == control::kPhaseRunning &&
                    controller_->ProxyAppliedVersion() >= store->RoutesVersion());
          });
        }
        auto e = store->GetEndpoint(ns, name);
        if (!e) {
          return fail(absl::NotFoundError(absl::StrCat("endpoint \"", name, "\" does not exist")));
        }
        value v = control::ToJson(*e);
        // Whether the proxy already listens on the endpoint's own port.
        v["status"]["routed"] =
            value::boolean(controller_->ProxyAppliedVersion() >= store->RoutesVersion());
        return reply(status_codes::OK, v);
      }
      if (!name.empty() && action.empty() && method == methods::DEL) {
        absl::Status s = store->UserDeleteEndpoint(ns, name);
        if (!s.ok()) return fail(s);
        return reply(status_codes::OK, Message("deletion requested"));
      }
      // suspend: stops the compute now and answers once it is down (bounded); start: asks for
      // it and answers at once (the caller waits for phase Running, as after create).
      if (!name.empty() && action == "suspend" && method == methods::POST) {
        auto e = store->RequestSuspend(ns, name);
        if (!e.ok()) return fail(e.status());
        const absl::Time deadline = absl::Now() + absl::Seconds(60);
        std::optional<control::Endpoint> now = store->GetEndpoint(ns, name);
        auto stopping = [](const std::string& phase) {
          return phase == control::kPhaseRunning || phase == control::kPhaseStarting ||
                 phase == control::kPhaseSuspending || phase == "Degraded";
        };
        while (now && stopping(now->status.phase) && absl::Now() < deadline) {
          absl::SleepFor(absl::Milliseconds(20));
          now = store->GetEndpoint(ns, name);
        }
        if (!now)
          return fail(absl::NotFoundError(absl::StrCat("endpoint \"", name, "\" was deleted")));
        return reply(status_codes::OK, control::ToJson(*now));
      }
      if (!name.empty() && action == "start" && method == methods::POST) {
        auto e = store->RequestStart(ns, name);
        if (!e.ok()) return fail(e.status());
        return reply(status_codes::OK, control::ToJson(*e));
      }
      if (!name.empty() && action == "wake" && method == methods::POST) {
        auto addr = controller_->Wake(name);
        if (!addr.ok()) return fail(addr.status());
        value v = value::object();
        v["host"] = value::string(addr->host);
        v["port"] = value::number(addr->port);
        if (addr->status_port > 0) v["statusPort"] = value::number(addr->status_port);
        return reply(status_codes::OK, v);
      }
    }
    if (collection == "routes" && method == methods::GET) {
      int64_t known = 0;
      int wait = 0;
      if (query.count("version")) (void)absl::SimpleAtoi(query["version"], &known);
      if (query.count("wait")) (void)absl::SimpleAtoi(query["wait"], &wait);
      int64_t version = 0;
      auto routes =
          controller_->WaitRoutes(known, absl::Seconds(std::clamp(wait, 0, 60)), &version);
      value v = value::object();
      v["version"] = value::number(version);
      value arr = value::array();
      size_t i = 0;
      for (const auto& r : routes) {
        value j = value::object();
        j["endpoint"] = value::string(r.endpoint);
        j["port"] = value::number(r.port);
        // The branch's role and verifier: the proxy authenticates before it wakes.
        auto e = credentials_ ? store->GetEndpoint(ns, r.endpoint) : std::nullopt;
        auto b = e ? store->GetBranch(ns, e->spec.branch) : std::nullopt;
        if (b) {
          auto verifier = credentials_->Verifier(b->metadata.uid);
          if (verifier.ok()) {
            j["role"] = value::string(credentials_->role());
            j["verifier"] = value::string(*verifier);
          } else {
            LogWarning("Cannot read a branch's credentials",
                       {{"branch", b->metadata.name}, {"error", verifier.status().ToString()}});
          }
        }
        arr[i++] = j;
      }
      v["routes"] = arr;
      return reply(status_codes::OK, v);
    }
    if (collection == "proxy" && name == "activity" && method == methods::POST) {
      value body = request.extract_json(true).get();
      std::map<std::string, int> counts;
      if (body.has_field("connections") && body.at("connections").is_object()) {
        for (const auto& [ep, n] : body.at("connections").as_object()) {
          if (n.is_number()) counts[ep] = n.as_integer();
        }
      }
      controller_->ReportProxyActivity(counts);
      return reply(status_codes::OK, Message("ok"));
    }
    if (collection == "debug" && name == "advance-clock" && method == methods::POST) {
      if (!advance_clock_) {
        return fail(absl::FailedPreconditionError(
            "the test clock is off; start with `pgbranch local up --test-clock`"));
      }
      auto d = control::ParseDuration(query.count("by") ? query["by"] : "");
      if (!d.ok()) return fail(d.status());
      advance_clock_(*d);
      LogInfo("Advanced the test clock", {{"by", control::DurationToString(*d)}});
      return reply(status_codes::OK, Message("advanced"));
    }
    return fail(absl::NotFoundError(absl::StrCat("no ", method, " ", path)));
  } catch (const std::exception& e) {
    return fail(absl::InvalidArgumentError(absl::StrCat("bad request: ", e.what())));
  }
}

}  // namespace pgbranch::cli
