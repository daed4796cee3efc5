#pragma once

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

#include "absl/status/status.h"

namespace pgbranch::proxy {

// Every metric of the proxy, declared in one place: pgbranch_proxy_<what>_<unit>. Labels are
// bounded: `endpoint` only carries names the controller knows (unknown names are counted as
// "unknown"), `result`/`reason`/`direction` are fixed sets.
//
// Thread-safe (prometheus-cpp metrics are). The relay's byte counters are plain references so
// the data path adds to them without looking anything up.
class ProxyMetrics {
 public:
  ProxyMetrics();
  absl::Status Expose(const std::string& address);

  // Open client connections per endpoint (relaying or starting up).
  void ConnectionOpened(const std::string& endpoint);
  void ConnectionClosed(const std::string& endpoint);
  // How a client connection ended up: ok | no_endpoint | not_found | wake_failed |
  // backend_unreachable | protocol_error | cancel.
  void ConnectionResult(const std::string& endpoint, const char* result);
  void ObserveWake(double seconds) { wake_latency_.Observe(seconds); }
  // reason: not_found | unavailable | timeout
  void WakeFailed(const char* reason);
  // result: forwarded | unknown_key | failed
  void CancelRequest(const char* result);
  void SetRoutes(int n) { routes_.Set(n); }
  // Sessions handed to the kernel relay: result ok | fallback (relayed in user space instead).
  void SpliceResult(const char* result);
  // Sessions spliced in the kernel right now.
  prometheus::Gauge& spliced_connections() { return spliced_connections_; }

  prometheus::Counter& bytes_client_to_server() { return bytes_client_to_server_; }
  prometheus::Counter& bytes_server_to_client() { return bytes_server_to_client_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  prometheus::Family<prometheus::Gauge>& open_connections_;
  prometheus::Family<prometheus::Counter>& connections_;
  prometheus::Histogram& wake_latency_;
  prometheus::Family<prometheus::Counter>& wake_failures_;
  prometheus::Family<prometheus::Counter>& cancel_requests_;
  prometheus::Family<prometheus::Counter>& bytes_;
  prometheus::Counter& bytes_client_to_server_;
  prometheus::Counter& bytes_server_to_client_;
  prometheus::Gauge& routes_;
  prometheus::Family<prometheus::Counter>& splices_;
  prometheus::Gauge& spliced_connections_;
};

}  // namespace pgbranch::proxy
