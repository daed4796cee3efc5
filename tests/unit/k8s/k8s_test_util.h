#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/cpprest.h"
#include "operator/control/timeline_service.h"
#include "operator/kube/fake_kube_api.h"
#include "operator/kube/kube_object.h"
#include "operator/model/json.h"
#include "tests/unit/control/control_fakes.h"

namespace pgbranch::k8s::testing {

// Polls `cond` every millisecond until it holds or `ms` pass (no fixed sleeps).
inline bool Eventually(const std::function<bool()>& cond, int ms = 10000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return cond();
}

inline web::json::value Obj(const std::string& json) { return web::json::value::parse(json); }

inline web::json::value BranchJson(const std::string& ns, const std::string& name,
                                   const std::string& parent = "") {
  std::string spec =
      parent.empty() ? R"({"noExpiry":true})" : R"({"parent":")" + parent + R"(","noExpiry":true})";
  return Obj(R"({"apiVersion":"pgbranch.io/v1alpha1","kind":"Branch","metadata":{"name":")" + name +
             R"(","namespace":")" + ns + R"("},"spec":)" + spec + "}");
}

inline web::json::value EndpointJson(const std::string& ns, const std::string& name,
                                     const std::string& branch) {
  return Obj(R"({"apiVersion":"pgbranch.io/v1alpha1","kind":"Endpoint","metadata":{"name":")" +
             name + R"(","namespace":")" + ns + R"("},"spec":{"branch":")" + branch +
             R"(","type":"ReadWrite"}})");
}

// The object's Ready condition as (status, reason), or ("", "") when absent.
inline std::pair<std::string, std::string> Ready(const web::json::value& obj) {
  if (!obj.has_field("status") || !obj.at("status").has_field("conditions")) return {"", ""};
  const auto& conds = obj.at("status").at("conditions");
  if (!conds.is_array()) return {"", ""};
  for (const auto& c : conds.as_array()) {
    if (control::JsonString(c, "type") == "Ready") {
      return {control::JsonString(c, "status"), control::JsonString(c, "reason")};
    }
  }
  return {"", ""};
}

inline std::string StatusString(const web::json::value& obj, const std::string& key) {
  if (!obj.has_field("status")) return "";
  return control::JsonString(obj.at("status"), key);
}

inline bool HasFinalizerNamed(const web::json::value& obj, const std::string& f) {
  if (!obj.has_field("metadata") || !obj.at("metadata").has_field("finalizers")) return false;
  for (const auto& v : obj.at("metadata").at("finalizers").as_array()) {
    if (v.is_string() && v.as_string() == f) return true;
  }
  return false;
}

// The fake TimelineService is not thread-safe; the controller's workers call it concurrently
// with the test's reads. Every call (and every test read, via With()) goes through one mutex.
class LockedTimelineService : public control::TimelineService {
 public:
  absl::Status EnsureTenant(const std::string& t) override {
    std::lock_guard<std::mutex> l(mu_);
    return fake_.EnsureTenant(t);
  }
  absl::StatusOr<control::TimelineInfo> CreateTimeline(const std::string& tenant,
                                                       const std::string& id,
                                                       const std::string& ancestor, uint64_t lsn,
                                                       std::optional<absl::Time> at) override {
    std::lock_guard<std::mutex> l(mu_);
    return fake_.CreateTimeline(tenant, id, ancestor, lsn, at);
  }
  absl::StatusOr<control::TimelineInfo> GetTimeline(const std::string& tenant,
                                                    const std::string& id) override {
    std::lock_guard<std::mutex> l(mu_);
    return fake_.GetTimeline(tenant, id);
  }
  absl::Status DeleteTimeline(const std::string& tenant, const std::string& id) override {
    std::lock_guard<std::mutex> l(mu_);
    return fake_.DeleteTimeline(tenant, id);
  }
  absl::StatusOr<uint64_t> ResetTimeline(const std::string& tenant,
                                         const std::string& id) override {
    std::lock_guard<std::mutex> l(mu_);
    return fake_.ResetTimeline(tenant, id);
  }
  absl::Status RewindTimeline(const std::string& tenant, const std::string& id, uint64_t lsn,
                              const std::string& backup_id) override {
    std::lock_guard<std::mutex> l(mu_);
    return fake_.RewindTimeline(tenant, id, lsn, backup_id);
  }
  absl::Status SetRetention(const std::string& tenant, const std::string& id,
                            std::optional<absl::Duration> window,
                            std::optional<uint64_t> bytes) override {
    std::lock_guard<std::mutex> l(mu_);
    return fake_.SetRetention(tenant, id, window, bytes);
  }

  template <typename F>
  auto With(F f) {
    std::lock_guard<std::mutex> l(mu_);
    return f(fake_);
  }

 private:
  std::mutex mu_;
  control::testing::FakeTimelineService fake_;
};

}  // namespace pgbranch::k8s::testing
