#include "operator/k8s/pod_compute_runtime.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>

#include "absl/strings/escaping.h"
#include "common/text_util.h"
#include "common/token_signer.h"
#include "operator/kube/fake_kube_api.h"
#include "operator/kube/kube_object.h"
#include "pageserver/server/token_auth.h"
#include "tests/unit/k8s/k8s_test_util.h"

namespace pgbranch::k8s {
namespace {

using control::ComputeState;
using ::testing::HasSubstr;
using testing::Obj;
using web::json::value;

class PodComputeRuntimeTest : public ::testing::Test {
 protected:
  PodComputeRuntimeTest() { MakeRuntime(PodComputeOptions{}); }

  void MakeRuntime(PodComputeOptions opts) {
    opts.pageserver = "pageserver.pgbranch:6400";
    runtime_ = std::make_unique<PodComputeRuntime>(
        opts, &api_,
        [this](const std::string& ns, const std::string& name) -> std::optional<value> {
          auto p = api_.Get(kube::kPods, ns, name);
          if (!p.ok()) return std::nullopt;
          return *p;
        },
        [this](const std::string& host, int port,
               const std::string& path) -> absl::StatusOr<std::string> {
          ++fetches_;
          last_fetch_ = host + ":" + std::to_string(port) + path;
          return fetch_result_;
        },
        [this](const std::string& host, int port, const std::string& path,
               absl::Duration timeout) -> absl::StatusOr<std::string> {
          last_post_ = host + ":" + std::to_string(port) + path;
          last_post_timeout_ = timeout;
          return post_result_;
        });
  }

  control::ComputeSpec Spec() const {
    control::ComputeSpec s;
    s.ns = "team";
    s.endpoint = "ep1";
    s.endpoint_uid = "uid-ep1";
    s.branch = "main";
    s.tenant_id = "tenant-team";
    s.timeline_id = "tl-main";
    return s;
  }

  value Pod() {
    auto p = api_.Get(kube::kPods, "team", "ep1-compute");
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *p : value::object();
  }

  value Container() { return Pod().at("spec").at("containers").at(0); }

  // Replaces the pod's status (as the kubelet would).
  void SetPodStatus(const std::string& status_json) {
    value p = Pod();
    p["status"] = Obj(status_json);
    ASSERT_TRUE(api_.Put(kube::kPods, p).ok());
  }

  static std::string ReadyStatus(const std::string& ip = "10.1.2.3") {
    return R"({"phase":"Running","podIP":")" + ip +
           R"(","conditions":[{"type":"Ready","status":"True"}]})";
  }

  kube::FakeKubeApi api_;
  std::unique_ptr<PodComputeRuntime> runtime_;
  std::atomic<int> fetches_{0};
  std::string last_fetch_;
  absl::StatusOr<std::string> fetch_result_ = std::string(R"({"busy":false})");
  std::string last_post_;
  absl::Duration last_post_timeout_;
  absl::StatusOr<std::string> post_result_ = std::string(R"({"checkpointed":true})");
};

std::string SecretField(const value& secret, const std::string& key) {
  for (const char* field : {"stringData", "data"}) {
    if (secret.has_field(field) && secret.at(field).has_field(key)) {
      return secret.at(field).at(key).as_string();
    }
  }
  return "<missing " + key + ">";
}

std::string EnvValue(const value& container, const std::string& name) {
  for (const value& e : container.at("env").as_array()) {
    if (control::JsonString(e, "name") == name) return control::JsonString(e, "value");
  }
  return "";
}

TEST_F(PodComputeRuntimeTest, StartCreatesSecretAndPrivilegedPod) {
  ASSERT_TRUE(runtime_->Start(Spec()).ok());

  auto secret = api_.Get(kube::kSecrets, "team", "ep1-credentials");
  ASSERT_TRUE(secret.ok()) << secret.status();
  for (const char* key : {"user", "password", "dbname", "host", "port", "uri", "endpoint"}) {
    EXPECT_THAT(SecretField(*secret, key), ::testing::Not(HasSubstr("<missing"))) << key;
  }
  const std::string password = SecretField(*secret, "password");
  EXPECT_EQ(password.size(), 24u);
  EXPECT_EQ(SecretField(*secret, "host"), "ep1.team.svc");
  EXPECT_EQ(SecretField(*secret, "port"), "5432");
  EXPECT_EQ(SecretField(*secret, "endpoint"), "ep1.team");
  const std::string uri = SecretField(*secret, "uri");
  EXPECT_THAT(uri, HasSubstr("options=endpoint%3Dep1.team"));
  EXPECT_THAT(uri, HasSubstr(password));
  EXPECT_THAT(uri, HasSubstr("@ep1.team.svc:5432/app"));

  value pod = Pod();
  EXPECT_EQ(kube::NameOf(pod), "ep1-compute");
  const value& owners = pod.at("metadata").at("ownerReferences");
  ASSERT_EQ(owners.size(), 1u);
  EXPECT_EQ(control::JsonString(owners.at(0), "kind"), "Endpoint");
  EXPECT_EQ(control::JsonString(owners.at(0), "uid"), "uid-ep1");
  EXPECT_EQ(control::JsonString(owners.at(0), "name"), "ep1");
  EXPECT_EQ(kube::LabelsOf(pod)["app.kubernetes.io/managed-by"], "pgbranch-operator");
  EXPECT_EQ(kube::LabelsOf(pod)["pgbranch.io/endpoint"], "ep1");

  value c = Container();
  EXPECT_TRUE(c.at("securityContext").at("privileged").as_bool());
  EXPECT_FALSE(c.at("securityContext").has_field("capabilities"));
  const std::string cfg = EnvValue(c, "PGBRANCH_COMPUTE_CONFIG");
  EXPECT_THAT(cfg, HasSubstr("listen_address: \"*\""));
  EXPECT_THAT(cfg, HasSubstr("tenant: \"tenant-team\""));
  EXPECT_THAT(cfg, HasSubstr("timeline: \"tl-main\""));
  EXPECT_THAT(cfg, HasSubstr("pageserver: \"pageserver.pgbranch:6400\""));
  EXPECT_THAT(cfg, HasSubstr("mode: read-write"));
  EXPECT_EQ(control::JsonString(c.at("readinessProbe").at("httpGet"), "path"), "/readyz");
  // The credentials Secret is mounted for the password.
  EXPECT_EQ(control::JsonString(pod.at("spec").at("volumes").at(0).at("secret"), "secretName"),
            "ep1-credentials");
}

TEST_F(PodComputeRuntimeTest, WithoutASignerComputesGetNoToken) {
  ASSERT_TRUE(runtime_->Start(Spec()).ok());
  EXPECT_TRUE(absl::IsNotFound(api_.Get(kube::kSecrets, "team", "ep1-pageserver-token").status()));
  EXPECT_THAT(EnvValue(Container(), "PGBRANCH_COMPUTE_CONFIG"),
              ::testing::Not(HasSubstr("token_file")));
  EXPECT_EQ(Pod().at("spec").at("volumes").size(), 2u);
}

// Compute pods with a token signer: a Secret per endpoint holding a tenant token, mounted.
class PodComputeTokenTest : public PodComputeRuntimeTest {
 protected:
  static constexpr char kKey[] = "operator-test-key-0123456789abcdef01";
  static constexpr char kNewKey[] = "operator-new-key-0123456789abcdef012";

  void UseKey(const std::string& key) {
    PodComputeOptions opts;
    opts.token_signer = std::make_shared<const TokenSigner>(*TokenSigner::FromKey(key));
    MakeRuntime(opts);
  }
  // Tenant = the namespace, as the operator's controller maps it.
  control::ComputeSpec TeamSpec() const {
    control::ComputeSpec s = Spec();
    s.tenant_id = "team";
    return s;
  }
  std::string Token() {
    auto secret = api_.Get(kube::kSecrets, "team", "ep1-pageserver-token");
    EXPECT_TRUE(secret.ok()) << secret.status();
    return secret.ok() ? SecretField(*secret, "token") : "";
  }
  // The pageserver's own verifier, with `key` in its signing key file.
  static absl::Status PageserverCheck(const std::string& key, const std::string& token,
                                      const std::string& tenant) {
    char path[] = "/tmp/pod-token-key.XXXXXX";
    int fd = mkstemp(path);
    EXPECT_GE(fd, 0);
    close(fd);
    std::ofstream(path) << key;
    pageserver::TokenAuth auth;
    absl::Status loaded = auth.AddSigningKeyFile(path);
    std::remove(path);
    if (!loaded.ok()) return loaded;
    return auth.Check("Bearer " + token, false, tenant, "tl-main");
  }
};

TEST_F(PodComputeTokenTest, ComputePodsGetATenantTokenSecretMounted) {
  UseKey(kKey);
  ASSERT_TRUE(runtime_->Start(TeamSpec()).ok());

  auto secret = api_.Get(kube::kSecrets, "team", "ep1-pageserver-token");
  ASSERT_TRUE(secret.ok()) << secret.status();
  const value& owners = secret->at("metadata").at("ownerReferences");
  ASSERT_EQ(owners.size(), 1u);
  EXPECT_EQ(control::JsonString(owners.at(0), "kind"), "Endpoint");
  EXPECT_EQ(control::JsonString(owners.at(0), "uid"), "uid-ep1");
  const std::string token = Token();
  EXPECT_TRUE(PageserverCheck(kKey, token, "team").ok());
  EXPECT_EQ(PageserverCheck(kKey, token, "other-team").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(PageserverCheck(kNewKey, token, "team").code(), absl::StatusCode::kUnauthenticated);
  auto claims = TokenSigner::FromKey(kKey)->Verify(token, absl::Now());
  ASSERT_TRUE(claims.ok());
  EXPECT_FALSE(claims->admin);
  EXPECT_EQ(claims->expires_unix, 0);

  // Mounted where the compute config's token_file points.
  value pod = Pod();
  value volume;
  for (const value& v : pod.at("spec").at("volumes").as_array()) {
    if (control::JsonString(v, "name") == "pageserver-token") volume = v;
  }
  ASSERT_TRUE(volume.has_field("secret"));
  EXPECT_EQ(control::JsonString(volume.at("secret"), "secretName"), "ep1-pageserver-token");
  EXPECT_EQ(control::JsonString(volume.at("secret").at("items").at(0), "key"), "token");
  std::string mount_path;
  const value container = Container();
  for (const value& m : container.at("volumeMounts").as_array()) {
    if (control::JsonString(m, "name") == "pageserver-token") {
      mount_path = control::JsonString(m, "mountPath");
      EXPECT_TRUE(m.at("readOnly").as_bool());
    }
  }
  EXPECT_EQ(mount_path, "/etc/pgbranch/pageserver-token");
  EXPECT_THAT(EnvValue(Container(), "PGBRANCH_COMPUTE_CONFIG"),
              HasSubstr("token_file: \"/etc/pgbranch/pageserver-token/token\""));
}

TEST_F(PodComputeTokenTest, AValidTokenIsKeptAndARotatedKeyReMintsIt) {
  UseKey(kKey);
  ASSERT_TRUE(runtime_->Start(TeamSpec()).ok());
  const std::string first = Token();
  ASSERT_TRUE(runtime_->Stop("team", "ep1").ok());
  ASSERT_TRUE(runtime_->Start(TeamSpec()).ok());
  EXPECT_EQ(api_.Calls(kube::FakeKubeApi::Verb::kUpdate), 0);
  EXPECT_EQ(Token(), first);

  UseKey(kNewKey);  // the operator restarted with the rotated Secret
  ASSERT_TRUE(runtime_->Stop("team", "ep1").ok());
  ASSERT_TRUE(runtime_->Start(TeamSpec()).ok());
  EXPECT_EQ(api_.Calls(kube::FakeKubeApi::Verb::kUpdate), 1);
  EXPECT_NE(Token(), first);
  EXPECT_TRUE(PageserverCheck(kNewKey, Token(), "team").ok());
}

TEST_F(PodComputeTokenTest, ATokenReadBackAsBase64DataIsRecognised) {
  // The API server returns Secrets with base64 `data` (the fake keeps `stringData`).
  UseKey(kKey);
  TokenClaims claims;
  claims.tenant = "team";
  const std::string token = *TokenSigner::FromKey(kKey)->Mint(claims);
  value secret =
      Obj(R"({"apiVersion":"v1","kind":"Secret","metadata":{"name":"ep1-pageserver-token",
      "namespace":"team"},"type":"Opaque","data":{}})");
  secret["data"]["token"] = value::string(absl::Base64Escape(token));
  ASSERT_TRUE(api_.Create(kube::kSecrets, "team", secret).ok());
  ASSERT_TRUE(runtime_->Start(TeamSpec()).ok());
  EXPECT_EQ(api_.Calls(kube::FakeKubeApi::Verb::kUpdate), 0);
}

TEST_F(PodComputeRuntimeTest, FuseDeviceResourceMeansNoPrivilege) {
  PodComputeOptions opts;
  opts.fuse_device_resource = "github.com/fuse";
  MakeRuntime(opts);
  ASSERT_TRUE(runtime_->Start(Spec()).ok());
  value c = Container();
  EXPECT_FALSE(c.at("securityContext").has_field("privileged"));
  const value& add = c.at("securityContext").at("capabilities").at("add");
  ASSERT_EQ(add.size(), 1u);
  EXPECT_EQ(add.at(0).as_string(), "SYS_ADMIN");
  EXPECT_EQ(c.at("resources").at("limits").at("github.com/fuse").as_string(), "1");
}

TEST_F(PodComputeRuntimeTest, SecondStartIsANoOpAndKeepsThePassword) {
  ASSERT_TRUE(runtime_->Start(Spec()).ok());
  const std::string pw1 =
      SecretField(*api_.Get(kube::kSecrets, "team", "ep1-credentials"), "password");
  const std::string pod_rv = kube::ResourceVersionOf(Pod());
  const int creates = api_.Calls(kube::FakeKubeApi::Verb::kCreate);

  ASSERT_TRUE(runtime_->Start(Spec()).ok());
  EXPECT_EQ(api_.Calls(kube::FakeKubeApi::Verb::kCreate), creates);
  EXPECT_EQ(kube::ResourceVersionOf(Pod()), pod_rv);
  EXPECT_EQ(SecretField(*api_.Get(kube::kSecrets, "team", "ep1-credentials"), "password"), pw1);

  // After the pod is gone (suspend), a new start reuses the Secret: same password.
  ASSERT_TRUE(runtime_->Stop("team", "ep1").ok());
  ASSERT_TRUE(runtime_->Start(Spec()).ok());
  EXPECT_EQ(SecretField(*api_.Get(kube::kSecrets, "team", "ep1-credentials"), "password"), pw1);
}

TEST_F(PodComputeRuntimeTest, ObserveAbsentPendingRunning) {
  EXPECT_EQ(runtime_->Observe("team", "ep1").state, ComputeState::kAbsent);
  ASSERT_TRUE(runtime_->Start(Spec()).ok());
  EXPECT_EQ(runtime_->Observe("team", "ep1").state, ComputeState::kStarting);  // no status yet
  SetPodStatus(R"({"phase":"Pending"})");
  EXPECT_EQ(runtime_->Observe("team", "ep1").state, ComputeState::kStarting);
  // Running but not Ready yet: still starting.
  SetPodStatus(R"({"phase":"Running","podIP":"10.1.2.3",
                   "conditions":[{"type":"Ready","status":"False"}]})");
  EXPECT_EQ(runtime_->Observe("team", "ep1").state, ComputeState::kStarting);
  EXPECT_EQ(fetches_, 0);

  fetch_result_ = std::string(R"({"busy":false,"last_active":"2026-11-21T10:42:00Z"})");
  SetPodStatus(ReadyStatus());
  auto obs = runtime_->Observe("team", "ep1");
  EXPECT_EQ(obs.state, ComputeState::kRunning);
  EXPECT_EQ(obs.host, "10.1.2.3");
  EXPECT_EQ(obs.port, 5432);
  EXPECT_FALSE(obs.busy);
  ASSERT_TRUE(obs.last_active.has_value());
  EXPECT_EQ(*obs.last_active, *control::ParseRfc3339("2026-11-21T10:42:00Z"));
  EXPECT_EQ(last_fetch_, "10.1.2.3:8080/status");
  EXPECT_EQ(fetches_, 1);

  // Polled at most every status_poll_interval (2 s): a second Observe reuses the reading.
  fetch_result_ = std::string(R"({"busy":true})");
  EXPECT_FALSE(runtime_->Observe("team", "ep1").busy);
  EXPECT_EQ(fetches_, 1);
}

// The parent's checkpoint before a branch (BranchReconciler::CheckpointParent) reaches the
// agent of the serving pod at its IP; a pod that does not serve is not asked.
TEST_F(PodComputeRuntimeTest, CheckpointAsksTheServingPodsAgent) {
  EXPECT_TRUE(
      absl::IsFailedPrecondition(runtime_->Checkpoint("team", "ep1", absl::Seconds(2)).status()));
  ASSERT_TRUE(runtime_->Start(Spec()).ok());
  SetPodStatus(R"({"phase":"Pending"})");
  EXPECT_TRUE(
      absl::IsFailedPrecondition(runtime_->Checkpoint("team", "ep1", absl::Seconds(2)).status()));
  EXPECT_EQ(last_post_, "");

  SetPodStatus(ReadyStatus("10.1.2.4"));
  auto done = runtime_->Checkpoint("team", "ep1", absl::Seconds(2));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_TRUE(*done);
  EXPECT_EQ(last_post_, "10.1.2.4:8080/checkpoint");
  EXPECT_EQ(last_post_timeout_, absl::Seconds(2));

  post_result_ = std::string(R"({"checkpointed":false,"walBytes":12})");
  done = runtime_->Checkpoint("team", "ep1", absl::Seconds(2));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_FALSE(*done);
  post_result_ = absl::UnavailableError("connection refused");
  EXPECT_TRUE(absl::IsUnavailable(runtime_->Checkpoint("team", "ep1", absl::Seconds(2)).status()));
  post_result_ = std::string("<html>");
  EXPECT_FALSE(runtime_->Checkpoint("team", "ep1", absl::Seconds(2)).ok());
}

TEST_F(PodComputeRuntimeTest, BusyFromTheAgent) {
  fetch_result_ = std::string(R"({"busy":true})");
  ASSERT_TRUE(runtime_->Start(Spec()).ok());
  SetPodStatus(ReadyStatus());
  auto obs = runtime_->Observe("team", "ep1");
  EXPECT_EQ(obs.state, ComputeState::kRunning);
  EXPECT_TRUE(obs.busy);
}

TEST_F(PodComputeRuntimeTest, UnreachableAgentOnANewPodCountsAsBusy) {
  fetch_result_ = absl::UnavailableError("connection refused");
  ASSERT_TRUE(runtime_->Start(Spec()).ok());
  SetPodStatus(ReadyStatus());
  auto obs = runtime_->Observe("team", "ep1");
  EXPECT_EQ(obs.state, ComputeState::kRunning);
  EXPECT_TRUE(obs.busy);  // never suspend on a guess
  EXPECT_EQ(fetches_, 1);
}

TEST_F(PodComputeRuntimeTest, UnparseableAgentAnswerCountsAsBusy) {
  fetch_result_ = std::string("<html>not json</html>");
  ASSERT_TRUE(runtime_->Start(Spec()).ok());
  SetPodStatus(ReadyStatus());
  EXPECT_TRUE(runtime_->Observe("team", "ep1").busy);
}

TEST_F(PodComputeRuntimeTest, FailedPhaseCarriesTheExitMessage) {
  ASSERT_TRUE(runtime_->Start(Spec()).ok());
  SetPodStatus(R"({"phase":"Failed","containerStatuses":[{"name":"compute","state":
      {"terminated":{"exitCode":3,"reason":"Error","message":"pagefs: mount failed"}}}]})");
  auto obs = runtime_->Observe("team", "ep1");
  EXPECT_EQ(obs.state, ComputeState::kFailed);
  EXPECT_THAT(obs.message, HasSubstr("code 3"));
  EXPECT_THAT(obs.message, HasSubstr("pagefs: mount failed"));
  EXPECT_THAT(obs.message, HasSubstr("kubectl logs ep1-compute"));
}

TEST_F(PodComputeRuntimeTest, ImageNeverPullIsAFailure) {
  ASSERT_TRUE(runtime_->Start(Spec()).ok());
  SetPodStatus(R"({"phase":"Pending","containerStatuses":[{"name":"compute","state":
      {"waiting":{"reason":"ErrImageNeverPull","message":"image not present"}}}]})");
  auto obs = runtime_->Observe("team", "ep1");
  EXPECT_EQ(obs.state, ComputeState::kFailed);
  EXPECT_THAT(obs.message, HasSubstr("ErrImageNeverPull"));
  EXPECT_THAT(obs.message, HasSubstr("image not present"));
}

TEST_F(PodComputeRuntimeTest, ContainerCreatingIsNotAFailure) {
  ASSERT_TRUE(runtime_->Start(Spec()).ok());
  SetPodStatus(R"({"phase":"Pending","containerStatuses":[{"name":"compute","state":
      {"waiting":{"reason":"ContainerCreating"}}}]})");
  EXPECT_EQ(runtime_->Observe("team", "ep1").state, ComputeState::kStarting);
}

TEST_F(PodComputeRuntimeTest, TerminatingPodIsStopping) {
  ASSERT_TRUE(runtime_->Start(Spec()).ok());
  // A finalizer keeps the pod around with a deletionTimestamp, like a kubelet's grace period.
  value p = Pod();
  p["metadata"]["finalizers"] = Obj(R"(["test/hold"])");
  p["status"] = Obj(ReadyStatus());
  ASSERT_TRUE(api_.Put(kube::kPods, p).ok());
  ASSERT_TRUE(api_.Delete(kube::kPods, "team", "ep1-compute").ok());
  ASSERT_FALSE(kube::MetaString(Pod(), "deletionTimestamp").empty());
  EXPECT_EQ(runtime_->Observe("team", "ep1").state, ComputeState::kStopping);
  // Stop on a terminating pod does not delete again.
  const int deletes = api_.Calls(kube::FakeKubeApi::Verb::kDelete);
  EXPECT_TRUE(runtime_->Stop("team", "ep1").ok());
  EXPECT_EQ(api_.Calls(kube::FakeKubeApi::Verb::kDelete), deletes);
  // And Start while it terminates creates nothing (the name is the lock).
  const int creates = api_.Calls(kube::FakeKubeApi::Verb::kCreate);
  EXPECT_TRUE(runtime_->Start(Spec()).ok());
  EXPECT_EQ(api_.Calls(kube::FakeKubeApi::Verb::kCreate), creates);
}

TEST_F(PodComputeRuntimeTest, StopDeletesThePodAndToleratesNotFound) {
  ASSERT_TRUE(runtime_->Start(Spec()).ok());
  ASSERT_TRUE(runtime_->Stop("team", "ep1").ok());
  EXPECT_TRUE(absl::IsNotFound(api_.Get(kube::kPods, "team", "ep1-compute").status()));
  EXPECT_EQ(runtime_->Observe("team", "ep1").state, ComputeState::kAbsent);
  EXPECT_TRUE(runtime_->Stop("team", "ep1").ok());  // already gone
  // The Secret stays (the endpoint's credentials outlive suspends).
  EXPECT_TRUE(api_.Get(kube::kSecrets, "team", "ep1-credentials").ok());
}

TEST_F(PodComputeRuntimeTest, StartErrorsAreReturned) {
  api_.FailNext(kube::FakeKubeApi::Verb::kCreate, 1, absl::PermissionDeniedError("forbidden"));
  absl::Status s = runtime_->Start(Spec());
  EXPECT_TRUE(absl::IsPermissionDenied(s)) << s;
  EXPECT_TRUE(runtime_->Start(Spec()).ok());
  EXPECT_TRUE(api_.Get(kube::kPods, "team", "ep1-compute").ok());
}

TEST(PodComputeRuntimeCacheLagTest, ExistingPodUnseenByTheCacheIsNotAnError) {
  kube::FakeKubeApi api;
  // A cache that has not seen the pod yet.
  PodComputeRuntime rt(PodComputeOptions{}, &api, [](const std::string&, const std::string&) {
    return std::optional<value>();
  });
  control::ComputeSpec spec;
  spec.ns = "team";
  spec.endpoint = "ep1";
  spec.timeline_id = "tl";
  ASSERT_TRUE(rt.Start(spec).ok());
  const std::string rv = kube::ResourceVersionOf(*api.Get(kube::kPods, "team", "ep1-compute"));
  EXPECT_TRUE(rt.Start(spec).ok());  // ALREADY_EXISTS: it is there
  EXPECT_EQ(kube::ResourceVersionOf(*api.Get(kube::kPods, "team", "ep1-compute")), rv);
  // No endpoint uid: no owner reference (nothing to dangle).
  EXPECT_FALSE(
      api.Get(kube::kPods, "team", "ep1-compute")->at("metadata").has_field("ownerReferences"));
}

TEST(ClientUriTest, ProxyHostAndEscaping) {
  PodComputeOptions opts;
  opts.proxy_host = "db.example.com";
  opts.proxy_port = 6432;
  kube::FakeKubeApi api;
  PodComputeRuntime rt(
      opts, &api, [](const std::string&, const std::string&) { return std::optional<value>(); });
  EXPECT_EQ(rt.ClientUri("ns", "ep", "p@ss/w"),
            "postgresql://app:p%40ss%2Fw@db.example.com:6432/app?options=endpoint%3Dep.ns");
  EXPECT_EQ(RandomPassword(40).size(), 40u);
  EXPECT_NE(RandomPassword(), RandomPassword());
}

}  // namespace
}  // namespace pgbranch::k8s
