#include "tests/integration/proxy/fake_controller.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/cpprest.h"
#include "common/net_util.h"

namespace pgbranch::proxy::testing {

using web::http::http_request;
using web::http::methods;
using web::http::experimental::listener::http_listener;

struct FakeController::Impl {
  std::unique_ptr<http_listener> listener;
};

namespace {

// A loopback port that was free a moment ago.
int FreePort() { return ::pgbranch::net::FreeLoopbackPort().value_or(0); }

web::json::value Message(const std::string& m) {
  web::json::value v = web::json::value::object();
  v["message"] = web::json::value::string(m);
  return v;
}

}  // namespace

FakeController::FakeController() : impl_(std::make_unique<Impl>()) {}

FakeController::~FakeController() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (impl_->listener) {
    try {
      impl_->listener->close().wait();
    } catch (const std::exception&) {
    }
  }
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::seconds(30), [this] { return in_flight_ == 0; });
  lock.unlock();
  // cpprest's asio listener can still be finishing a reply on its own threads after close()
  // returned and every handler did; destroying it then crashed the test binary at exit under
  // load (once in CI). A closed listener holds no socket and the test process ends soon: keep
  // it alive rather than race it.
  if (impl_->listener) (void)impl_->listener.release();
}

absl::Status FakeController::Start() {
  url_ = absl::StrCat("http://127.0.0.1:", FreePort());
  impl_->listener = std::make_unique<http_listener>(web::uri(url_));
  impl_->listener->support([this](http_request request) {
    // The destructor waits for handlers in flight: they use this object's members.
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++in_flight_;
    }
    struct Done {
      FakeController* self;
      ~Done() {
        std::lock_guard<std::mutex> lock(self->mu_);
        --self->in_flight_;
        self->cv_.notify_all();
      }
    } done{this};
    std::string path = request.relative_uri().path();
    std::vector<std::string> parts;
    for (const auto& p : web::uri::split_path(path)) parts.push_back(p);
    if (request.method() == methods::POST && parts.size() == 4 && parts[0] == "v1" &&
        parts[1] == "endpoints" && parts[3] == "wake") {
      std::string name = web::uri::decode(parts[2]);
      std::unique_lock<std::mutex> lock(mu_);
      auto it = endpoints_.find(name);
      if (it == endpoints_.end()) {
        lock.unlock();
        request.reply(404, Message(absl::StrCat("endpoint ", name, " not found")));
        return;
      }
      EndpointState& e = it->second;
      ++e.wake_calls;
      cv_.wait_for(lock, e.delay, [this] { return stopping_; });
      int code = e.fail_code;
      std::string message = e.fail_message;
      proxy::BackendAddress address = e.address;
      lock.unlock();
      if (code != 0) {
        request.reply(code, Message(message));
        return;
      }
      web::json::value v = web::json::value::object();
      v["host"] = web::json::value::string(address.host);
      v["port"] = web::json::value::number(address.port);
      request.reply(200, v);
      return;
    }
    if (request.method() == methods::GET && path == "/v1/routes") {
      auto query = web::uri::split_query(request.relative_uri().query());
      int64_t version = -1;
      int wait = 0;
      if (query.count("version")) (void)absl::SimpleAtoi(query["version"], &version);
      if (query.count("wait")) (void)absl::SimpleAtoi(query["wait"], &wait);
      std::unique_lock<std::mutex> lock(mu_);
      acked_.push_back(version);
      cv_.notify_all();
      cv_.wait_for(lock, std::chrono::seconds(wait),
                   [&] { return routes_version_ != version || stopping_; });
      web::json::value routes = web::json::value::array();
      size_t i = 0;
      for (const auto& r : routes_) {
        web::json::value route = web::json::value::object();
        route["endpoint"] = web::json::value::string(r.endpoint);
        route["port"] = web::json::value::number(r.port);
        routes[i++] = route;
      }
      web::json::value v = web::json::value::object();
      v["version"] = web::json::value::number(routes_version_);
      v["routes"] = routes;
      lock.unlock();
      request.reply(200, v);
      return;
    }
    if (request.method() == methods::POST && path == "/v1/proxy/activity") {
      web::json::value body = request.extract_json(true).get();
      std::map<std::string, int> counts;
      if (body.has_field("connections")) {
        for (const auto& [name, n] : body.at("connections").as_object()) {
          counts[name] = n.as_integer();
        }
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        last_activity_ = counts;
        ++activity_reports_;
      }
      cv_.notify_all();
      request.reply(200, web::json::value::object());
      return;
    }
    request.reply(404, Message("no such path"));
  });
  try {
    impl_->listener->open().wait();
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", url_, ": ", e.what()));
  }
  return absl::OkStatus();
}

void FakeController::AddEndpoint(const std::string& name, proxy::BackendAddress address) {
  std::lock_guard<std::mutex> lock(mu_);
  endpoints_[name].address = std::move(address);
}

void FakeController::FailWake(const std::string& name, int code, const std::string& message) {
  std::lock_guard<std::mutex> lock(mu_);
  endpoints_[name].fail_code = code;
  endpoints_[name].fail_message = message;
}

void FakeController::DelayWake(const std::string& name, std::chrono::milliseconds delay) {
  std::lock_guard<std::mutex> lock(mu_);
  endpoints_[name].delay = delay;
}

int FakeController::wake_calls(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = endpoints_.find(name);
  return it == endpoints_.end() ? 0 : it->second.wake_calls;
}

int64_t FakeController::SetRoutes(std::vector<proxy::Route> routes) {
  std::lock_guard<std::mutex> lock(mu_);
  routes_ = std::move(routes);
  ++routes_version_;
  cv_.notify_all();
  return routes_version_;
}

bool FakeController::WaitForAck(int64_t version, std::chrono::seconds max) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(
      lock, max, [&] { return std::find(acked_.begin(), acked_.end(), version) != acked_.end(); });
}

bool FakeController::WaitForActivity(const std::string& endpoint, int n, std::chrono::seconds max) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, max, [&] {
    if (activity_reports_ == 0) return false;
    auto it = last_activity_.find(endpoint);
    return (it == last_activity_.end() ? 0 : it->second) == n;
  });
}

int FakeController::activity_reports() const {
  std::lock_guard<std::mutex> lock(mu_);
  return activity_reports_;
}

}  // namespace pgbranch::proxy::testing
