#include "proxy/kube_control_client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <regex>
#include <thread>

#include "operator/kube/fake_kube_api.h"

namespace pgbranch::proxy {
namespace {

using kube::FakeKubeApi;
using web::json::value;

value EndpointObj(const std::string& ns, const std::string& name, const std::string& phase,
                  const std::string& ready_message = "") {
  value o = value::object();
  o["apiVersion"] = value::string("pgbranch.io/v1alpha1");
  o["kind"] = value::string("Endpoint");
  o["metadata"]["name"] = value::string(name);
  o["metadata"]["namespace"] = value::string(ns);
  o["spec"]["branch"] = value::string("main");
  o["status"]["phase"] = value::string(phase);
  value cond = value::object();
  cond["type"] = value::string("Ready");
  cond["status"] = value::string(phase == "Running" ? "True" : "False");
  cond["reason"] = value::string(phase);
  cond["message"] = value::string(ready_message);
  o["status"]["conditions"][0] = cond;
  return o;
}

value PodObj(const std::string& ns, const std::string& endpoint, const std::string& ip,
             bool ready) {
  value o = value::object();
  o["apiVersion"] = value::string("v1");
  o["kind"] = value::string("Pod");
  o["metadata"]["name"] = value::string(endpoint + "-compute");
  o["metadata"]["namespace"] = value::string(ns);
  o["metadata"]["labels"]["app.kubernetes.io/managed-by"] = value::string("pgbranch-operator");
  o["metadata"]["labels"]["pgbranch.io/endpoint"] = value::string(endpoint);
  o["status"]["phase"] = value::string("Running");
  o["status"]["podIP"] = value::string(ip);
  value cond = value::object();
  cond["type"] = value::string("Ready");
  cond["status"] = value::string(ready ? "True" : "False");
  o["status"]["conditions"][0] = cond;
  return o;
}

std::string WakeAnnotation(FakeKubeApi& api, const std::string& ns, const std::string& name) {
  auto ep = api.Get(kube::kEndpoints, ns, name);
  if (!ep.ok()) return "";
  const value& o = *ep;
  if (!o.has_field("metadata") || !o.at("metadata").has_field("annotations")) return "";
  const value& a = o.at("metadata").at("annotations");
  return a.has_field(kWakeRequestedAnnotation) ? a.at(kWakeRequestedAnnotation).as_string() : "";
}

bool Eventually(const std::function<bool()>& pred,
                std::chrono::milliseconds limit = std::chrono::milliseconds(3000)) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

class KubeControlClientTest : public ::testing::Test {
 protected:
  std::unique_ptr<KubeControlClient> MakeClient(absl::Duration wake_timeout = absl::Seconds(5),
                                                std::vector<std::string> namespaces = {"default"}) {
    KubeControlClient::Options o;
    o.namespaces = std::move(namespaces);
    o.default_namespace = "default";
    o.wake_timeout = wake_timeout;
    o.repatch_interval = absl::Seconds(10);
    o.activity_patch_interval = absl::Seconds(30);
    o.informer_options.initial_backoff = absl::Milliseconds(10);
    auto c = std::make_unique<KubeControlClient>(&api_, o);
    c->Start();
    EXPECT_TRUE(c->WaitForSync(absl::Seconds(5)));
    return c;
  }

  FakeKubeApi api_;
};

TEST_F(KubeControlClientTest, MissingEndpointIsNotFound) {
  auto c = MakeClient();
  auto r = c->Wake("nope");
  EXPECT_TRUE(absl::IsNotFound(r.status())) << r.status();
  EXPECT_NE(r.status().message().find("default/nope"), std::string::npos) << r.status();
  EXPECT_EQ(api_.Calls(FakeKubeApi::Verb::kPatch), 0);
}

TEST_F(KubeControlClientTest, UnwatchedNamespaceIsNotFound) {
  auto c = MakeClient();
  auto r = c->Wake("dev.other");
  EXPECT_TRUE(absl::IsNotFound(r.status())) << r.status();
  EXPECT_NE(r.status().message().find("not watched"), std::string::npos) << r.status();
}

TEST_F(KubeControlClientTest, RunningEndpointAnswersAtOnceAndBumpsActivityRateLimited) {
  ASSERT_TRUE(api_.Put(kube::kEndpoints, EndpointObj("default", "dev", "Running")).ok());
  ASSERT_TRUE(api_.Put(kube::kPods, PodObj("default", "dev", "10.0.0.7", true)).ok());
  auto c = MakeClient();
  ASSERT_TRUE(Eventually([&] { return c->Wake("dev").ok(); }));
  auto r = c->Wake("dev.default");  // both spellings
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->host, "10.0.0.7");
  EXPECT_EQ(r->port, 5432);
  // The first wake queued one activity patch (asynchronously).
  ASSERT_TRUE(Eventually([&] { return !WakeAnnotation(api_, "default", "dev").empty(); }));
  EXPECT_EQ(api_.Calls(FakeKubeApi::Verb::kPatch), 1);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(c->Wake("dev").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(api_.Calls(FakeKubeApi::Verb::kPatch), 1);  // within 30 s: no more patches
}

TEST_F(KubeControlClientTest, SuspendedEndpointIsPatchedAndWaitsForAReadyPod) {
  ASSERT_TRUE(api_.Put(kube::kEndpoints, EndpointObj("team", "dev", "Suspended")).ok());
  auto c = MakeClient(absl::Seconds(10), {"team"});
  absl::StatusOr<BackendAddress> result;
  std::thread waker([&] { result = c->Wake("dev.team"); });
  std::string annotation;
  ASSERT_TRUE(Eventually([&] {
    annotation = WakeAnnotation(api_, "team", "dev");
    return !annotation.empty();
  }));
  EXPECT_TRUE(std::regex_match(annotation, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)")))
      << annotation;
  // The operator starts the pod: first not ready, then ready.
  ASSERT_TRUE(api_.Put(kube::kPods, PodObj("team", "dev", "10.1.2.3", false)).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(api_.Put(kube::kPods, PodObj("team", "dev", "10.1.2.3", true)).ok());
  waker.join();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->host, "10.1.2.3");
  EXPECT_EQ(result->port, 5432);
  EXPECT_EQ(api_.Calls(FakeKubeApi::Verb::kPatch), 1);
}

TEST_F(KubeControlClientTest, ConcurrentWakesShareOnePatch) {
  ASSERT_TRUE(api_.Put(kube::kEndpoints, EndpointObj("default", "dev", "Suspended")).ok());
  auto c = MakeClient();
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] { ok += c->Wake("dev").ok() ? 1 : 0; });
  }
  ASSERT_TRUE(Eventually([&] { return !WakeAnnotation(api_, "default", "dev").empty(); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(api_.Put(kube::kPods, PodObj("default", "dev", "10.0.0.9", true)).ok());
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 8);
  EXPECT_EQ(api_.Calls(FakeKubeApi::Verb::kPatch), 1);
}

TEST_F(KubeControlClientTest, ConflictIsUnavailableWithTheReadyMessage) {
  ASSERT_TRUE(
      api_.Put(kube::kEndpoints, EndpointObj("default", "dev2", "Conflict",
                                             "branch main already has the read-write endpoint dev"))
          .ok());
  auto c = MakeClient();
  auto r = c->Wake("dev2");
  EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
  EXPECT_NE(r.status().message().find("already has the read-write endpoint dev"), std::string::npos)
      << r.status();
}

TEST_F(KubeControlClientTest, TimeoutIsDeadlineExceeded) {
  ASSERT_TRUE(api_.Put(kube::kEndpoints, EndpointObj("default", "dev", "Suspended")).ok());
  auto c = MakeClient(absl::Milliseconds(300));
  auto start = absl::Now();
  auto r = c->Wake("dev");
  EXPECT_TRUE(absl::IsDeadlineExceeded(r.status())) << r.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_NE(r.status().message().find("did not become ready"), std::string::npos) << r.status();
}

TEST_F(KubeControlClientTest, ShutdownCancelsAWakePromptly) {
  ASSERT_TRUE(api_.Put(kube::kEndpoints, EndpointObj("default", "dev", "Suspended")).ok());
  auto c = MakeClient(absl::Seconds(30));
  absl::StatusOr<BackendAddress> result;
  std::thread waker([&] { result = c->Wake("dev"); });
  ASSERT_TRUE(Eventually([&] { return !WakeAnnotation(api_, "default", "dev").empty(); }));
  auto start = absl::Now();
  c->Shutdown();
  waker.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  EXPECT_TRUE(absl::IsCancelled(result.status())) << result.status();
  EXPECT_TRUE(absl::IsCancelled(c->Wake("dev").status()));
}

TEST_F(KubeControlClientTest, AllNamespacesAndDottedNamesInTheDefaultNamespace) {
  ASSERT_TRUE(api_.Put(kube::kEndpoints, EndpointObj("prod", "api", "Running")).ok());
  ASSERT_TRUE(api_.Put(kube::kPods, PodObj("prod", "api", "10.9.9.9", true)).ok());
  ASSERT_TRUE(api_.Put(kube::kEndpoints, EndpointObj("default", "a.b", "Running")).ok());
  ASSERT_TRUE(api_.Put(kube::kPods, PodObj("default", "a.b", "10.8.8.8", true)).ok());
  auto c = MakeClient(absl::Seconds(5), {""});
  ASSERT_TRUE(Eventually([&] { return c->Wake("api.prod").ok(); }));
  EXPECT_EQ(c->Wake("api.prod")->host, "10.9.9.9");
  auto r = c->Wake("a.b");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->host, "10.8.8.8");
}

TEST_F(KubeControlClientTest, DeletedPodIsNoLongerReturned) {
  ASSERT_TRUE(api_.Put(kube::kEndpoints, EndpointObj("default", "dev", "Running")).ok());
  ASSERT_TRUE(api_.Put(kube::kPods, PodObj("default", "dev", "10.0.0.7", true)).ok());
  auto c = MakeClient(absl::Milliseconds(300));
  ASSERT_TRUE(Eventually([&] { return c->Wake("dev").ok(); }));
  ASSERT_TRUE(api_.Delete(kube::kPods, "default", "dev-compute").ok());
  ASSERT_TRUE(Eventually([&] { return !c->Wake("dev").ok(); }));
  EXPECT_TRUE(absl::IsDeadlineExceeded(c->Wake("dev").status()));
}

TEST_F(KubeControlClientTest, WatchRoutesIsAnEmptyConstantTable) {
  auto c = MakeClient();
  auto t = c->WatchRoutes(0, 30);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->version, 1);
  EXPECT_TRUE(t->routes.empty());
  auto start = absl::Now();
  t = c->WatchRoutes(1, 0);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->version, 1);
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(500));
  absl::StatusOr<RouteTable> blocked;
  std::thread poller([&] { blocked = c->WatchRoutes(1, 30); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  start = absl::Now();
  c->Shutdown();
  poller.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  EXPECT_TRUE(absl::IsCancelled(blocked.status()));
  EXPECT_TRUE(c->ReportActivity({{"dev", 1}}).ok());
}

}  // namespace
}  // namespace pgbranch::proxy
