#pragma once

#include <mutex>
#include <optional>
#include <string>

#include "common/http_server.h"
#include "compute/compute_config.h"

// A pooled compute: `pgbranch-compute --pool` starts with no endpoint and waits for its
// configuration over HTTP, so a pool of pre-started idle compute pods (image pulled, container
// running, network up) can be handed an endpoint when a client wakes it:
//
//   PUT /config   body: the same YAML/JSON as --config   -> 202 {"state":"starting"}
//                 a bad configuration                    -> 400 {"message": "<key>: ..."}
//                 a second configuration                 -> 409 (a compute serves one endpoint)
//   GET /status   {"state":"pooled"}     GET /readyz  503 (not serving yet)     GET /healthz 200
//
// Once configured, the receiver is stopped and the agent runs as with --config, serving its own
// /status on the configuration's status_listen (usually the same port). Thread-safe.
namespace pgbranch::compute {

class ConfigReceiver {
 public:
  ConfigReceiver();

  // Binds `listen` ("host:port") and serves until Stop().
  absl::Status Start(const std::string& listen);
  void Stop();
  int port() const { return http_.port(); }

  // The accepted configuration, once one arrived.
  std::optional<ComputeConfig> config();

  HttpResponse Handle(const std::string& method, const std::string& path, const std::string& body);

 private:
  std::mutex mu_;
  std::optional<ComputeConfig> config_;  // GUARDED_BY(mu_)
  HttpServer http_;
};

}  // namespace pgbranch::compute
