#include "operator/k8s/operator_controller.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <mutex>
#include <vector>

#include "operator/kube/fake_kube_api.h"
#include "operator/kube/kube_object.h"
#include "tests/unit/k8s/k8s_test_util.h"

namespace pgbranch::k8s {
namespace {

using Verb = kube::FakeKubeApi::Verb;
using testing::BranchJson;
using testing::EndpointJson;
using testing::Eventually;
using web::json::value;

constexpr char kNs[] = "team";

struct RecordedEvent {
  std::string kind, name, type, reason;
};

class OperatorControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    OperatorConfig config;
    config.namespaces = {kNs};
    config.leader_elect = false;
    config.resync_seconds = 1;
    config.identity = "test";
    config.compute.pageserver = "pageserver:6400";
    controller_ = std::make_unique<OperatorController>(
        config, &api_, &timelines_, &metrics_,
        [this](const std::string& kind, const value& obj, const std::string& type,
               const std::string& reason, const std::string&) {
          std::lock_guard<std::mutex> l(mu_);
          events_.push_back({kind, kube::NameOf(obj), type, reason});
        });
    controller_->Start();
    ASSERT_TRUE(controller_->WaitForSync(absl::Seconds(10)));
    if (lead_in_setup_) controller_->SetLeading(true);
  }
  void TearDown() override { controller_->Shutdown(); }

  std::optional<value> Get(const kube::Resource& r, const std::string& name) {
    auto o = api_.Get(r, kNs, name);
    if (!o.ok()) return std::nullopt;
    return *o;
  }
  value Create(const kube::Resource& r, const value& obj) {
    auto c = api_.Create(r, kNs, obj);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *c : value::object();
  }
  bool IsReady(const kube::Resource& r, const std::string& name) {
    auto o = Get(r, name);
    return o && testing::Ready(*o).first == "True";
  }
  // Waits until `name` is Ready=True and returns it.
  value WaitReadyBranch(const std::string& name) {
    EXPECT_TRUE(Eventually([&] { return IsReady(kube::kBranches, name); }))
        << "branch " << name << " never became ready: "
        << (Get(kube::kBranches, name) ? Get(kube::kBranches, name)->serialize() : "absent");
    return Get(kube::kBranches, name).value_or(value::object());
  }
  bool HasEvent(const std::string& name, const std::string& type, const std::string& reason) {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& e : events_) {
      if (e.name == name && e.type == type && e.reason == reason) return true;
    }
    return false;
  }

  kube::FakeKubeApi api_;
  testing::LockedTimelineService timelines_;
  OperatorMetrics metrics_;
  std::mutex mu_;
  std::vector<RecordedEvent> events_;
  std::unique_ptr<OperatorController> controller_;
  bool lead_in_setup_ = true;
};

// A standby replica: caches warm, no reconciling. (Losing the lease exits the process, so a
// replica only ever goes from standby to leading.)
class StandbyControllerTest : public OperatorControllerTest {
 protected:
  StandbyControllerTest() { lead_in_setup_ = false; }
};

TEST_F(OperatorControllerTest, BranchTreeLifecycle) {
  value main_created = Create(kube::kBranches, BranchJson(kNs, "main"));
  const std::string main_uid = kube::UidOf(main_created);
  value main = WaitReadyBranch("main");
  EXPECT_TRUE(testing::HasFinalizerNamed(main, kFinalizer));
  EXPECT_EQ(testing::StatusString(main, "timelineID"), main_uid);
  EXPECT_EQ(testing::StatusString(main, "tenantID"), kNs);
  EXPECT_TRUE(timelines_.With([&](auto& f) { return f.timelines.count(main_uid) == 1; }));

  value dev_created = Create(kube::kBranches, BranchJson(kNs, "dev", "main"));
  const std::string dev_uid = kube::UidOf(dev_created);
  value dev = WaitReadyBranch("dev");
  EXPECT_TRUE(testing::HasFinalizerNamed(dev, kFinalizer));
  EXPECT_EQ(testing::StatusString(dev, "timelineID"), dev_uid);
  EXPECT_EQ(testing::StatusString(dev, "parentTimelineID"), main_uid);
  EXPECT_TRUE(timelines_.With([&](auto& f) {
    return f.timelines.count(dev_uid) == 1 && f.timelines[dev_uid].ancestor_timeline_id == main_uid;
  }));

  // Deleting the parent while a child exists: it stays, with a reason.
  ASSERT_TRUE(api_.Delete(kube::kBranches, kNs, "main").ok());
  ASSERT_TRUE(Eventually([&] {
    auto m = Get(kube::kBranches, "main");
    return m &&
           testing::Ready(*m) == std::make_pair(std::string("False"), std::string("HasChildren"));
  })) << Get(kube::kBranches, "main")->serialize();
  main = *Get(kube::kBranches, "main");
  EXPECT_FALSE(kube::MetaString(main, "deletionTimestamp").empty());
  EXPECT_TRUE(testing::HasFinalizerNamed(main, kFinalizer));
  EXPECT_TRUE(timelines_.With([&](auto& f) { return f.timelines.count(main_uid) == 1; }));
  EXPECT_TRUE(Eventually([&] { return HasEvent("main", "Warning", "HasChildren"); }));

  // Deleting the child lets both go, timelines included.
  ASSERT_TRUE(api_.Delete(kube::kBranches, kNs, "dev").ok());
  ASSERT_TRUE(Eventually([&] {
    return !Get(kube::kBranches, "dev") && !Get(kube::kBranches, "main");
  })) << "main: "
      << (Get(kube::kBranches, "main") ? Get(kube::kBranches, "main")->serialize() : "gone");
  EXPECT_TRUE(timelines_.With([&](auto& f) {
    return f.timelines.empty() && std::count(f.deleted.begin(), f.deleted.end(), dev_uid) == 1 &&
           std::count(f.deleted.begin(), f.deleted.end(), main_uid) == 1;
  }));
}

TEST_F(OperatorControllerTest, SecondReadWriteEndpointConflicts) {
  Create(kube::kBranches, BranchJson(kNs, "main"));
  WaitReadyBranch("main");
  value ep1 = Create(kube::kEndpoints, EndpointJson(kNs, "ep1", "main"));
  ASSERT_TRUE(Eventually([&] { return Get(kube::kPods, "ep1-compute").has_value(); }));
  ASSERT_TRUE(Eventually([&] {
    auto e = Get(kube::kEndpoints, "ep1");
    return e && testing::StatusString(*e, "phase") == "Starting";
  }));
  value pod = *Get(kube::kPods, "ep1-compute");
  EXPECT_EQ(control::JsonString(pod.at("metadata").at("ownerReferences").at(0), "uid"),
            kube::UidOf(ep1));
  EXPECT_TRUE(Get(kube::kSecrets, "ep1-credentials").has_value());
  EXPECT_TRUE(testing::HasFinalizerNamed(*Get(kube::kEndpoints, "ep1"), kFinalizer));

  Create(kube::kEndpoints, EndpointJson(kNs, "ep2", "main"));
  ASSERT_TRUE(Eventually([&] {
    auto e = Get(kube::kEndpoints, "ep2");
    return e && testing::StatusString(*e, "phase") == "Conflict" &&
           testing::Ready(*e) == std::make_pair(std::string("False"), std::string("Conflict"));
  })) << Get(kube::kEndpoints, "ep2")->serialize();
  EXPECT_FALSE(Get(kube::kPods, "ep2-compute").has_value());
  EXPECT_FALSE(Get(kube::kSecrets, "ep2-credentials").has_value());
  // ep1 keeps its pod; give the workers a few more passes (resync is 1 s) to be sure.
  EXPECT_FALSE(Eventually([&] { return Get(kube::kPods, "ep2-compute").has_value(); }, 1500));
  EXPECT_TRUE(Get(kube::kPods, "ep1-compute").has_value());
  EXPECT_EQ(testing::StatusString(*Get(kube::kEndpoints, "ep1"), "phase"), "Starting");
  EXPECT_TRUE(Eventually([&] { return HasEvent("ep2", "Warning", "Conflict"); }));
}

TEST_F(OperatorControllerTest, ConvergesThroughDroppedWatchesAndGone) {
  Create(kube::kBranches, BranchJson(kNs, "main"));
  WaitReadyBranch("main");

  // A dropped connection: the informers reconnect and the next branch converges.
  api_.DropWatches();
  Create(kube::kBranches, BranchJson(kNs, "after-drop", "main"));
  value b2 = WaitReadyBranch("after-drop");
  EXPECT_EQ(testing::StatusString(b2, "parentTimelineID"),
            kube::UidOf(*Get(kube::kBranches, "main")));

  // History compacted and the watches dropped: reconnecting gets 410 Gone; relist.
  const int lists = api_.Calls(Verb::kList);
  api_.FailNext(Verb::kWatch, 3, absl::OutOfRangeError("too old resource version (410)"));
  api_.Compact();
  api_.DropWatches();
  Create(kube::kBranches, BranchJson(kNs, "after-gone", "main"));
  WaitReadyBranch("after-gone");
  EXPECT_TRUE(Eventually([&] { return api_.Calls(Verb::kList) > lists; }));

  // A 410 as an ERROR event on a fresh watch (the history before it is compacted away).
  api_.Compact();
  api_.DropWatches();
  Create(kube::kBranches, BranchJson(kNs, "after-compact", "after-gone"));
  WaitReadyBranch("after-compact");
  EXPECT_TRUE(Eventually([&] { return api_.OpenWatches() >= 3; }));
}

TEST_F(StandbyControllerTest, NotLeadingDoesNothingUntilLeading) {
  Create(kube::kBranches, BranchJson(kNs, "idle"));
  EXPECT_FALSE(Eventually([&] { return IsReady(kube::kBranches, "idle"); }, 500));
  EXPECT_FALSE(testing::HasFinalizerNamed(*Get(kube::kBranches, "idle"), kFinalizer));
  // A new leader converges what happened meanwhile.
  controller_->SetLeading(true);
  value b = WaitReadyBranch("idle");
  EXPECT_TRUE(testing::HasFinalizerNamed(b, kFinalizer));
}

}  // namespace
}  // namespace pgbranch::k8s
