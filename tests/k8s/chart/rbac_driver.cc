// chart_rbac_driver: derives the Kubernetes API permissions pgbranch's operator and proxy use by
// running their real code (OperatorController with its PodComputeRuntime and KubeObjectStore,
// LeaderElector, EventRecorder; the proxy's KubeControlClient) through a full lifecycle against
// the in-memory FakeKubeApi, each behind a RecordingKubeClient. Prints one line per permission:
//
//   <component> <apiGroup|core> <resource[/subresource]> <verb> <scope>
//
// scope = "lease" for calls in the Lease namespace, "watched" for calls in a watched namespace
// or across all namespaces. tests/k8s/chart/rbac_test.sh compares this with the chart's RBAC.
//
// The lifecycle: win and renew and release the leader Lease; a root branch and a child (a status
// write conflict on each kind, so the re-read path runs); a read-write endpoint (credentials
// Secret, ExternalName Service, compute pod, a pageserver token Secret left by an older signing
// key replaced), its pod Ready, a proxy wake (annotation patch); an
// Event recorded twice (aggregation patches the first); a branch with a TTL that expires (the
// operator deletes it); deleting the root branch (its endpoint and pod go, finalizers removed).
// Exits 1 when a step does not happen (the recorded set would be incomplete).
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <map>

#include "common/token_signer.h"
#include "operator/k8s/operator_controller.h"
#include "operator/k8s/operator_metrics.h"
#include "operator/kube/event_recorder.h"
#include "operator/kube/fake_kube_api.h"
#include "operator/kube/kube_object.h"
#include "operator/kube/leader_elector.h"
#include "proxy/kube_control_client.h"
#include "tests/k8s/chart/recording_kube_client.h"
#include "tests/unit/k8s/k8s_test_util.h"

namespace pgbranch::chart {
namespace {

using k8s::testing::Eventually;
using web::json::value;

constexpr char kNs[] = "team";
constexpr char kLeaseNs[] = "pgbranch-system";

bool Step(const char* what, bool ok) {
  fprintf(stderr, "%s  %s\n", ok ? "ok  " : "FAIL", what);
  return ok;
}

// A TCP port nothing listens on (the compute agent's status port: fetches fail fast).
int ClosedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

bool Exists(kube::FakeKubeApi& api, const kube::Resource& r, const std::string& name) {
  return api.Get(r, kNs, name).ok();
}

bool Ready(kube::FakeKubeApi& api, const kube::Resource& r, const std::string& name) {
  auto o = api.Get(r, kNs, name);
  return o.ok() && k8s::testing::Ready(*o).first == "True";
}

bool Has(RecordingKubeClient& c, const std::string& resource, const std::string& verb) {
  for (const Permission& p : c.Recorded()) {
    if (p.resource == resource && p.verb == verb) return true;
  }
  return false;
}

int Run() {
  kube::FakeKubeApi api;
  RecordingKubeClient op(&api);
  RecordingKubeClient px(&api);
  bool ok = true;

  // Leader election: create, renew, (release at the end).
  kube::LeaderElector::Options lo;
  lo.lease_namespace = kLeaseNs;
  lo.lease_name = "pgbranch-operator";
  lo.identity = "driver";
  lo.lease_duration = absl::Seconds(2);
  lo.renew_deadline = absl::Seconds(1);
  lo.retry_period = absl::Milliseconds(20);
  lo.on_started_leading = [] {};
  lo.on_stopped_leading = [] {};
  kube::LeaderElector elector(&op, lo);
  elector.Start();
  ok &= Step("leader: lease taken", Eventually([&] { return elector.IsLeader(); }));
  ok &= Step("leader: lease renewed", Eventually([&] { return Has(op, "leases", "update"); }));

  kube::EventRecorder::Options eo;
  eo.reporting_instance = "driver";
  kube::EventRecorder recorder(&op, eo);
  k8s::OperatorConfig config;
  config.namespaces = {kNs};
  config.leader_elect = false;
  config.resync_seconds = 1;
  config.identity = "driver";
  config.compute.pageserver = "pageserver:6400";
  config.compute.status_port = ClosedPort();
  config.compute.pg_port = ClosedPort();  // the Promotion's SQL connections fail fast
  // As with --pageserver-signing-key-file: computes get a tenant token Secret.
  auto signer = TokenSigner::FromKey("chart-rbac-driver-signing-key-0123456789");
  if (!signer.ok()) return Step("token signer", false) ? 0 : 1;
  config.compute.token_signer = std::make_shared<const TokenSigner>(std::move(*signer));
  k8s::testing::LockedTimelineService timelines;
  k8s::OperatorMetrics metrics;
  k8s::OperatorController controller(
      config, &op, &timelines, &metrics,
      [&recorder](const std::string&, const value& obj, const std::string& type,
                  const std::string& reason, const std::string& message) {
        recorder.Record(kube::ObjectReference::From(obj),
                        type == "Warning" ? kube::EventRecorder::Type::kWarning
                                          : kube::EventRecorder::Type::kNormal,
                        reason, message);
      });
  controller.Start();
  ok &= Step("operator: caches synced", controller.WaitForSync(absl::Seconds(10)));
  controller.SetLeading(true);

  // Branches; the first status write of each kind conflicts (the store re-reads and retries).
  api.FailNext(kube::FakeKubeApi::Verb::kUpdateStatus, 1, absl::AbortedError("conflict"));
  (void)api.Create(kube::kBranches, kNs, k8s::testing::BranchJson(kNs, "main"));
  ok &= Step("branch main Ready", Eventually([&] { return Ready(api, kube::kBranches, "main"); }));
  (void)api.Create(kube::kBranches, kNs, k8s::testing::BranchJson(kNs, "dev", "main"));
  ok &= Step("branch dev Ready", Eventually([&] { return Ready(api, kube::kBranches, "dev"); }));

  // A read-write endpoint: Secrets, Service, Pod. Its token Secret exists already with a token
  // of an older key (a rotated key): the operator replaces it.
  (void)api.Create(kube::kSecrets, kNs, k8s::testing::Obj(R"({"apiVersion":"v1","kind":"Secret",
      "metadata":{"name":"main-pageserver-token","namespace":"team"},"data":{"token":"c3RhbGU="}})"));
  api.FailNext(kube::FakeKubeApi::Verb::kUpdateStatus, 1, absl::AbortedError("conflict"));
  (void)api.Create(kube::kEndpoints, kNs, k8s::testing::EndpointJson(kNs, "main", "main"));
  ok &= Step("compute pod created",
             Eventually([&] { return Exists(api, kube::kPods, "main-compute"); }));
  ok &= Step("stale pageserver token Secret replaced", Has(op, "secrets", "update"));
  ok &= Step("credentials Secret created", Exists(api, kube::kSecrets, "main-credentials") &&
                                               Exists(api, kube::kServices, "main"));
  // The kubelet's part: the pod runs and is Ready.
  if (auto pod = api.Get(kube::kPods, kNs, "main-compute"); pod.ok()) {
    value p = *pod;
    p["status"] = k8s::testing::Obj(
        R"({"phase":"Running","podIP":"127.0.0.1","conditions":[{"type":"Ready","status":"True"}]})");
    (void)api.Put(kube::kPods, p);
  }
  ok &=
      Step("endpoint main Ready", Eventually([&] { return Ready(api, kube::kEndpoints, "main"); }));

  // The proxy: informers, a wake (annotation patch).
  proxy::KubeControlClient::Options po;
  po.namespaces = {kNs};
  po.default_namespace = kNs;
  po.wake_timeout = absl::Seconds(10);
  po.activity_patch_interval = absl::Milliseconds(10);
  po.informer_options.initial_backoff = absl::Milliseconds(10);
  proxy::KubeControlClient proxy(&px, po);
  proxy.Start();
  ok &= Step("proxy: caches synced", proxy.WaitForSync(absl::Seconds(10)));
  auto woken = proxy.Wake("main");
  ok &= Step("proxy: wake answered", woken.ok());
  ok &=
      Step("proxy: wake annotation patched", Eventually([&] { return proxy.patches_sent() > 0; }));
  proxy.Shutdown();

  // Events: the same event twice within the aggregation window (create, then patch).
  if (auto main = api.Get(kube::kBranches, kNs, "main"); main.ok()) {
    recorder.Normal(kube::ObjectReference::From(*main), "DriverCheck", "recorded twice");
    recorder.Normal(kube::ObjectReference::From(*main), "DriverCheck", "recorded twice");
  }
  ok &= Step("events created and aggregated",
             Has(op, "events", "create") && Has(op, "events", "patch"));

  // A Promotion of dev into main with its migration in a ConfigMap: the operator reads it,
  // writes status, creates the rehearsal branch and endpoint (owned by the Promotion), and
  // reads the rehearsal endpoint's credentials Secret to connect (which fails here: no
  // PostgreSQL, so it stays Rehearsing).
  (void)api.Create(kube::kConfigMaps, kNs, k8s::testing::Obj(R"({"apiVersion":"v1",
      "kind":"ConfigMap","metadata":{"name":"migration","namespace":"team"},
      "data":{"up.sql":"ALTER TABLE t ADD COLUMN c int;"}})"));
  (void)api.Create(kube::kPromotions, kNs,
                   k8s::testing::Obj(R"({"apiVersion":"pgbranch.io/v1alpha1","kind":"Promotion",
                       "metadata":{"name":"promote-dev","namespace":"team"},
                       "spec":{"branch":"dev","migration":{"configMapRef":{"name":"migration",
                       "key":"up.sql"}}}})"));
  ok &= Step("promotion: rehearsal branch and endpoint created",
             Eventually([&] { return Exists(api, kube::kEndpoints, "promote-dev-rehearsal-1"); }));
  ok &=
      Step("promotion: rehearsal compute pod created",
           Eventually([&] { return Exists(api, kube::kPods, "promote-dev-rehearsal-1-compute"); }));
  if (auto pod = api.Get(kube::kPods, kNs, "promote-dev-rehearsal-1-compute"); pod.ok()) {
    value p = *pod;
    p["status"] = k8s::testing::Obj(
        R"({"phase":"Running","podIP":"127.0.0.1","conditions":[{"type":"Ready","status":"True"}]})");
    (void)api.Put(kube::kPods, p);
  }
  ok &= Step("promotion: credentials read to connect to the rehearsal",
             Eventually([&] { return Has(op, "secrets", "get"); }, 20000) &&
                 Has(op, "configmaps", "get") && Has(op, "promotions/status", "update"));
  (void)api.Delete(kube::kPromotions, kNs, "promote-dev");
  (void)api.Delete(kube::kEndpoints, kNs, "promote-dev-rehearsal-1");
  (void)api.Delete(kube::kBranches, kNs, "promote-dev-rehearsal-1");
  ok &= Step(
      "promotion: rehearsal branch gone",
      Eventually([&] { return !Exists(api, kube::kBranches, "promote-dev-rehearsal-1"); }, 20000));

  // A branch whose TTL runs out: the operator deletes it.
  (void)api.Create(kube::kBranches, kNs,
                   k8s::testing::Obj(R"({"apiVersion":"pgbranch.io/v1alpha1","kind":"Branch",
                       "metadata":{"name":"ci","namespace":"team"},
                       "spec":{"parent":"main","ttl":"1s"}})"));
  ok &= Step("expired branch deleted by the operator",
             Eventually([&] { return Has(op, "branches", "delete"); }, 20000) &&
                 Eventually([&] { return !Exists(api, kube::kBranches, "ci"); }));

  // Deleting the tree: endpoints go with their branch, then pods, timelines, finalizers.
  (void)api.Delete(kube::kBranches, kNs, "dev");
  (void)api.Delete(kube::kBranches, kNs, "main");
  ok &= Step("endpoint deleted by the operator",
             Eventually([&] { return Has(op, "endpoints", "delete"); }));
  // The kubelet's part again: the deleted pod goes away (the fake has no kubelet or GC).
  ok &= Step("compute pod deleted", Eventually([&] { return Has(op, "pods", "delete"); }));
  ok &= Step("branches gone", Eventually(
                                  [&] {
                                    return !Exists(api, kube::kBranches, "main") &&
                                           !Exists(api, kube::kBranches, "dev");
                                  },
                                  20000));

  controller.Shutdown();
  elector.Stop();
  ok &= Step("leader: lease released", Has(op, "leases", "get"));

  for (auto [name, client] :
       std::map<std::string, RecordingKubeClient*>{{"operator", &op}, {"proxy", &px}}) {
    for (const Permission& p : client->Recorded()) {
      printf("%s %s %s %s %s\n", name.c_str(), p.group.empty() ? "core" : p.group.c_str(),
             p.resource.c_str(), p.verb.c_str(), p.ns == kLeaseNs ? "lease" : "watched");
    }
  }
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace pgbranch::chart

int main() { return pgbranch::chart::Run(); }
