#include "operator/kube/event_recorder.h"

#include "gtest/gtest.h"
#include "operator/kube/fake_kube_api.h"
#include "operator/kube/kube_object.h"
#include "tests/unit/kube/test_util.h"

namespace pgbranch::kube {
namespace {

TEST(EventRecorderTest, AggregatesRepeatsWithinTheWindow) {
  FakeKubeApi api;
  FakeClock clock;
  EventRecorder::Options opts;
  opts.clock = &clock;
  EventRecorder rec(&api, opts);
  auto branch = api.Create(kBranches, "ns", testing::Branch("ns", "dev"));
  ASSERT_TRUE(branch.ok());
  ObjectReference ref = ObjectReference::From(*branch);
  EXPECT_EQ(ref.kind, "Branch");

  rec.Warning(ref, "ResetFailed", "pageserver unavailable");
  clock.Advance(60'000'000);
  rec.Warning(ref, "ResetFailed", "pageserver unavailable");
  rec.Normal(ref, "Created", "Created timeline");
  auto events = api.List(kCoreEvents, "ns");
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->items.size(), 2u);
  for (const auto& ev : events->items) {
    EXPECT_EQ(StringField(ev.at("involvedObject"), "uid"), UidOf(*branch));
    if (StringField(ev, "reason") == "ResetFailed") {
      EXPECT_EQ(IntField(ev, "count"), 2);
      EXPECT_EQ(StringField(ev, "type"), "Warning");
      EXPECT_NE(StringField(ev, "firstTimestamp"), StringField(ev, "lastTimestamp"));
    } else {
      EXPECT_EQ(IntField(ev, "count"), 1);
    }
  }
  // Outside the window: a new Event.
  clock.Advance(11 * 60'000'000LL);
  rec.Warning(ref, "ResetFailed", "pageserver unavailable");
  EXPECT_EQ(api.List(kCoreEvents, "ns")->items.size(), 3u);
}

TEST(EventRecorderTest, FailuresAreNotFatal) {
  FakeKubeApi api;
  api.FailNext(FakeKubeApi::Verb::kCreate, 1, absl::PermissionDeniedError("no RBAC"));
  EventRecorder rec(&api);
  rec.Normal(ObjectReference{"v1", "Pod", "ns", "p", "u"}, "Started", "Started compute");
  EXPECT_EQ(api.List(kCoreEvents, "ns")->items.size(), 0u);
}

}  // namespace
}  // namespace pgbranch::kube
