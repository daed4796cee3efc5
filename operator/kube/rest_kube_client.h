#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "operator/kube/kube_client.h"
#include "operator/kube/kube_config.h"

// KubeClient over cpprestsdk's http_client: TLS with the config's CA and client certificate,
// a bearer token per request (re-read through the config's token provider), errors mapped as
// kube_client.h documents with the API server's Status message kept. Thread-safe: requests may
// run concurrently from any thread; each watch runs on its own thread.
namespace pgbranch::kube {

class RestKubeClient : public KubeClient {
 public:
  struct Options {
    absl::Duration request_timeout = absl::Seconds(30);
    std::string user_agent = "pgbranch-operator";
  };

  // Reads nothing over the network; fails only on a bad config (unparsable server URL).
  static absl::StatusOr<std::unique_ptr<RestKubeClient>> New(const KubeConfig& config,
                                                             Options options);
  static absl::StatusOr<std::unique_ptr<RestKubeClient>> New(const KubeConfig& config) {
    return New(config, Options());
  }
  ~RestKubeClient() override;

  absl::StatusOr<web::json::value> Get(const Resource& r, const std::string& ns,
                                       const std::string& name) override;
  absl::StatusOr<ObjectList> List(const Resource& r, const std::string& ns,
                                  const ListOptions& options = {}) override;
  absl::StatusOr<web::json::value> Create(const Resource& r, const std::string& ns,
                                          const web::json::value& object) override;
  absl::StatusOr<web::json::value> Update(const Resource& r, const std::string& ns,
                                          const web::json::value& object) override;
  absl::StatusOr<web::json::value> UpdateStatus(const Resource& r, const std::string& ns,
                                                const web::json::value& object) override;
  absl::StatusOr<web::json::value> Patch(const Resource& r, const std::string& ns,
                                         const std::string& name, PatchType type,
                                         const web::json::value& patch,
                                         const std::string& field_manager = "pgbranch-operator",
                                         const std::string& subresource = "") override;
  absl::Status Delete(const Resource& r, const std::string& ns, const std::string& name,
                      const std::string& propagation = "") override;
  absl::StatusOr<std::unique_ptr<Watch>> StartWatch(
      const Resource& r, const std::string& ns, const WatchOptions& options,
      std::function<void(const WatchEvent&)> on_event,
      std::function<void(const absl::Status&)> on_end) override;

  // The request path: /api/v1[/namespaces/NS]/PLURAL[/NAME[/SUB]] for the core group,
  // /apis/G/V/... otherwise. Names are URL-encoded.
  static std::string Path(const Resource& r, const std::string& ns, const std::string& name = "",
                          const std::string& subresource = "");
  // HTTP status + body (a metav1.Status, or anything) -> absl::Status, keeping the message.
  // `create` makes a 409 without reason "Conflict" ALREADY_EXISTS.
  static absl::Status StatusFromHttp(int code, const std::string& body, bool create);

 private:
  struct Impl;
  explicit RestKubeClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pgbranch::kube
