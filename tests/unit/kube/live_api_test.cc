// Runs only when PGBRANCH_LIVE_KUBECONFIG names a kubeconfig of a real (throwaway) API server:
// RestKubeClient over TLS with client certificates, error mapping and a streaming watch.
#include <atomic>
#include <cstdlib>

#include "gtest/gtest.h"
#include "operator/kube/event_recorder.h"
#include "operator/kube/informer.h"
#include "operator/kube/kube_object.h"
#include "operator/kube/leader_elector.h"
#include "operator/kube/rest_kube_client.h"
#include "tests/unit/kube/test_util.h"

namespace pgbranch::kube {
namespace {

const Resource kConfigMaps{"", "v1", "configmaps"};

TEST(LiveApiTest, CrudWatchAndErrors) {
  const char* path = std::getenv("PGBRANCH_LIVE_KUBECONFIG");
  if (path == nullptr) GTEST_SKIP() << "PGBRANCH_LIVE_KUBECONFIG not set";
  auto config = KubeConfig::FromFile(path);
  ASSERT_TRUE(config.ok()) << config.status();
  auto client = RestKubeClient::New(*config);
  ASSERT_TRUE(client.ok()) << client.status();
  auto& c = **client;
  (void)c.Delete(kConfigMaps, "default", "pgbranch-live");
  auto list = c.List(kConfigMaps, "default", {.limit = 1});
  ASSERT_TRUE(list.ok()) << list.status();
  std::atomic<int> added{0};
  auto watch = c.StartWatch(
      kConfigMaps, "default", {.resource_version = list->resource_version, .timeout_seconds = 30},
      [&](const WatchEvent& ev) {
        if (ev.type == WatchEventType::kAdded && NameOf(ev.object) == "pgbranch-live") added++;
      },
      [](const absl::Status&) {});
  ASSERT_TRUE(watch.ok()) << watch.status();
  auto cm = testing::Obj(R"({"apiVersion":"v1","kind":"ConfigMap",
      "metadata":{"name":"pgbranch-live"},"data":{"a":"1"}})");
  auto created = c.Create(kConfigMaps, "default", cm);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(c.Create(kConfigMaps, "default", cm).status().code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(testing::Eventually([&] { return added.load() == 1; }));
  auto updated = c.Patch(kConfigMaps, "default", "pgbranch-live", PatchType::kMerge,
                         testing::Obj(R"({"data":{"a":"2"}})"));
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(c.Update(kConfigMaps, "default", *created).status().code(), absl::StatusCode::kAborted);
  auto bad = c.Patch(kConfigMaps, "default", "pgbranch-live", PatchType::kJson,
                     testing::Obj(R"([{"op":"test","path":"/data/a","value":"9"}])"));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << bad.status();
  auto applied = c.Patch(kConfigMaps, "default", "pgbranch-live", PatchType::kApply,
                         testing::Obj(R"({"apiVersion":"v1","kind":"ConfigMap",
                             "metadata":{"name":"pgbranch-live"},"data":{"b":"3"}})"));
  EXPECT_TRUE(applied.ok()) << applied.status();
  EXPECT_TRUE(c.Delete(kConfigMaps, "default", "pgbranch-live", "Background").ok());
  EXPECT_EQ(c.Get(kConfigMaps, "default", "pgbranch-live").status().code(),
            absl::StatusCode::kNotFound);
  (*watch)->Cancel();

  // Informer, Lease (MicroTime) and a core Event, validated by the real server.
  Informer inf(&c, kConfigMaps, "kube-system", {});
  inf.Start();
  EXPECT_TRUE(inf.WaitForSync(absl::Seconds(10)));
  std::atomic<bool> leading{false};
  LeaderElector::Options lo;
  lo.lease_namespace = "default";
  lo.lease_name = "pgbranch-live";
  lo.identity = "live-test";
  lo.retry_period = absl::Milliseconds(100);
  lo.on_started_leading = [&] { leading = true; };
  LeaderElector le(&c, lo);
  le.Start();
  EXPECT_TRUE(testing::Eventually([&] { return leading.load(); }));
  le.Stop();
  auto lease = c.Get(kLeases, "default", "pgbranch-live");
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_EQ(StringField(lease->at("spec"), "holderIdentity"), "");  // released
  EventRecorder rec(&c);
  rec.Normal(ObjectReference::From(*lease), "Tested", "Live test event");
  rec.Normal(ObjectReference::From(*lease), "Tested", "Live test event");
  auto events = c.List(kCoreEvents, "default", {.field_selector = "reason=Tested"});
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_FALSE(events->items.empty());
  EXPECT_EQ(IntField(events->items.back(), "count"), 2);
  (void)c.Delete(kLeases, "default", "pgbranch-live");
  inf.Stop();
}

}  // namespace
}  // namespace pgbranch::kube
