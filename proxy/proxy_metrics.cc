#include "proxy/proxy_metrics.h"

#include "common/metrics_util.h"

namespace pgbranch::proxy {

ProxyMetrics::ProxyMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      open_connections_(prometheus::BuildGauge()
                            .Name("pgbranch_proxy_client_connections")
                            .Help("Open client connections per endpoint")
                            .Register(*registry_)),
      connections_(prometheus::BuildCounter()
                       .Name("pgbranch_proxy_connections_total")
                       .Help("Client connections by endpoint and how they were handled")
                       .Register(*registry_)),
      wake_latency_(
          prometheus::BuildHistogram()
              .Name("pgbranch_proxy_wake_duration_seconds")
              .Help("Time from asking the controller to wake an endpoint until it "
                    "answered (successful wakes; includes compute start when suspended)")
              .Register(*registry_)
              .Add({},
                   prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                           0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60})),
      wake_failures_(prometheus::BuildCounter()
                         .Name("pgbranch_proxy_wake_failures_total")
                         .Help("Wakes that failed, by reason")
                         .Register(*registry_)),
      cancel_requests_(prometheus::BuildCounter()
                           .Name("pgbranch_proxy_cancel_requests_total")
                           .Help("CancelRequests received, by result")
                           .Register(*registry_)),
      bytes_(prometheus::BuildCounter()
                 .Name("pgbranch_proxy_relayed_bytes_total")
                 .Help("Bytes relayed between clients and PostgreSQL, by direction")
                 .Register(*registry_)),
      bytes_client_to_server_(bytes_.Add({{"direction", "client_to_server"}})),
      bytes_server_to_client_(bytes_.Add({{"direction", "server_to_client"}})),
      routes_(MakeGauge(*registry_, "pgbranch_proxy_routes",
                        "Per-endpoint listeners open (routes applied from the controller)")),
      splices_(prometheus::BuildCounter()
                   .Name("pgbranch_proxy_splices_total")
                   .Help("Established plain-TCP sessions handed to the kernel (BPF sockmap) "
                         "relay, by result: ok, fallback (relayed in user space)")
                   .Register(*registry_)),
      spliced_connections_(MakeGauge(*registry_, "pgbranch_proxy_spliced_connections",
                                     "Sessions relayed by the kernel (BPF sockmap) right now")) {}

absl::Status ProxyMetrics::Expose(const std::string& address) {
  return ServeMetrics(address, registry_, &exposer_);
}

void ProxyMetrics::ConnectionOpened(const std::string& endpoint) {
  open_connections_.Add({{"endpoint", endpoint}}).Increment();
}

void ProxyMetrics::ConnectionClosed(const std::string& endpoint) {
  open_connections_.Add({{"endpoint", endpoint}}).Decrement();
}

void ProxyMetrics::ConnectionResult(const std::string& endpoint, const char* result) {
  connections_.Add({{"endpoint", endpoint}, {"result", result}}).Increment();
}

void ProxyMetrics::WakeFailed(const char* reason) {
  wake_failures_.Add({{"reason", reason}}).Increment();
}

void ProxyMetrics::SpliceResult(const char* result) {
  splices_.Add({{"result", result}}).Increment();
}

void ProxyMetrics::CancelRequest(const char* result) {
  cancel_requests_.Add({{"result", result}}).Increment();
}

}  // namespace pgbranch::proxy
