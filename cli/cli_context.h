#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "cli/api_client.h"
#include "cli/kube_api.h"
#include "common/cpprest.h"

// What every pgbranch command needs: the state directory, the running local instance (from
// STATE/local.json), the controller client, the output format and the credentials. Against a
// Kubernetes cluster (cli/kube_target.h) Client() answers from the cluster instead.
namespace pgbranch::cli {

// STATE/local.json, written by `local up`.
struct LocalInstance {
  std::string pageserver;      // host:port
  std::string controller_url;  // http://127.0.0.1:port
  int proxy_port = 0;
  int pageserver_pid = 0;
  int controller_pid = 0;
  int proxy_pid = 0;
  bool test_clock = false;
  std::string started_at;
};

class CliContext {
 public:
  // `state_dir`: the --state-dir flag ("": $PGBRANCH_HOME, else the default); `json`: -o json.
  static absl::StatusOr<CliContext> Create(const std::string& state_dir, bool json);

  const std::string& state_dir() const { return state_dir_; }
  bool json() const { return json_; }
  std::string Path(const std::string& rel) const { return state_dir_ + "/" + rel; }

  // The running instance; FAILED_PRECONDITION telling to run `pgbranch local up` if none.
  absl::StatusOr<LocalInstance> Instance() const;
  absl::Status WriteInstance(const LocalInstance& inst) const;
  // The local controller, or the cluster once SetKube() chose one.
  absl::StatusOr<ApiClient> Client() const;

  // Kubernetes mode: commands read and write the cluster's custom resources.
  void SetKube(std::shared_ptr<KubeApi> kube) { kube_ = std::move(kube); }
  const KubeApi* kube() const { return kube_.get(); }
  // --proxy-address HOST:PORT: Kubernetes connection strings through this address of the
  // pgbranch proxy (a port-forward, a LoadBalancer) instead of the host in the Secret.
  void SetProxyAddress(std::string address) { proxy_address_ = std::move(address); }
  const std::string& proxy_address() const { return proxy_address_; }

  // The password of the login role of connection strings (created by `local up`).
  absl::StatusOr<std::string> Password() const;
  std::string PasswordFile() const { return Path("credentials/app.password"); }
  // The directory of this binary, where its sibling binaries live.
  static std::string BinDir();

 private:
  std::string state_dir_;
  bool json_ = false;
  std::shared_ptr<KubeApi> kube_;
  std::string proxy_address_;
};

// Prints a JSON value for scripts (indented, one document).
void PrintJson(const web::json::value& v);

// "postgresql://app:PW@127.0.0.1:PORT/app".
std::string ConnectionUri(const std::string& password, int port);

// Waits with a deadline, calling `poll` every `interval` until it returns true or an error.
absl::Status WaitFor(const std::function<absl::StatusOr<bool>()>& poll, absl::Duration timeout,
                     const std::string& what, absl::Duration interval = absl::Milliseconds(10));

}  // namespace pgbranch::cli
