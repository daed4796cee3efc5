#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "common/cpprest.h"

namespace pgbranch::kube::testing {

// Polls `cond` every millisecond until it holds or `ms` pass.
inline bool Eventually(const std::function<bool()>& cond, int ms = 5000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return cond();
}

inline web::json::value Obj(const std::string& json) { return web::json::value::parse(json); }

inline web::json::value Branch(const std::string& ns, const std::string& name,
                               const std::string& parent = "main") {
  return Obj(R"({"apiVersion":"pgbranch.io/v1alpha1","kind":"Branch","metadata":{"name":")" + name +
             R"(","namespace":")" + ns + R"(","labels":{"app":"db"}},"spec":{"parent":")" + parent +
             R"("}})");
}

}  // namespace pgbranch::kube::testing
