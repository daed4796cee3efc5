#pragma once

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

#include "absl/status/status.h"

// Small helpers for declaring prometheus-cpp metrics in one place per component. Header-only:
// only targets that link prometheus-cpp include it.
namespace pgbranch {

inline prometheus::Counter& MakeCounter(prometheus::Registry& r, const std::string& name,
                                        const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r).Add({});
}

inline prometheus::Gauge& MakeGauge(prometheus::Registry& r, const std::string& name,
                                    const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
}

// Serves `registry` at http://address/metrics; the exposer stops when `*exposer` is destroyed.
inline absl::Status ServeMetrics(const std::string& address,
                                 const std::shared_ptr<prometheus::Registry>& registry,
                                 std::unique_ptr<prometheus::Exposer>* exposer) {
  try {
    *exposer = std::make_unique<prometheus::Exposer>(address);
  } catch (const std::exception& e) {
    return absl::UnavailableError("cannot serve metrics on " + address + ": " + e.what());
  }
  (*exposer)->RegisterCollectable(registry);
  return absl::OkStatus();
}

}  // namespace pgbranch
