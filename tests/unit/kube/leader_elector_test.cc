#include "operator/kube/leader_elector.h"

#include <atomic>

#include "gtest/gtest.h"
#include "operator/kube/fake_kube_api.h"
#include "operator/kube/kube_object.h"
#include "tests/unit/kube/test_util.h"

namespace pgbranch::kube {
namespace {

using testing::Eventually;

struct Candidate {
  std::atomic<int> started{0};
  std::atomic<int> stopped{0};
  LeaderElector::Options Options(const std::string& id) {
    LeaderElector::Options o;
    o.lease_namespace = "pgbranch-system";
    o.lease_name = "pgbranch-operator";
    o.identity = id;
    o.lease_duration = absl::Seconds(1);
    o.renew_deadline = absl::Milliseconds(300);
    o.retry_period = absl::Milliseconds(20);
    o.on_started_leading = [this] { started++; };
    o.on_stopped_leading = [this] { stopped++; };
    return o;
  }
};

TEST(LeaderElectorTest, OneLeadsAndASuccessorTakesOverOnRelease) {
  FakeKubeApi api;
  Candidate a, b;
  auto one = std::make_unique<LeaderElector>(&api, a.Options("a"));
  one->Start();
  ASSERT_TRUE(Eventually([&] { return one->IsLeader(); }));
  LeaderElector two(&api, b.Options("b"));
  two.Start();
  absl::SleepFor(absl::Milliseconds(150));
  EXPECT_FALSE(two.IsLeader());
  auto lease = api.Get(kLeases, "pgbranch-system", "pgbranch-operator");
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(lease->at("spec").at("holderIdentity").as_string(), "a");
  EXPECT_TRUE(ParseKubeTime(lease->at("spec").at("renewTime").as_string()).ok());

  absl::Time released = absl::Now();
  one->Stop();  // releases
  EXPECT_EQ(a.stopped.load(), 1);
  ASSERT_TRUE(Eventually([&] { return two.IsLeader(); }));
  // Much sooner than the 1 s lease duration: the release made it free.
  EXPECT_LT(absl::Now() - released, absl::Milliseconds(800));
  lease = api.Get(kLeases, "pgbranch-system", "pgbranch-operator");
  EXPECT_EQ(lease->at("spec").at("holderIdentity").as_string(), "b");
  EXPECT_EQ(IntField(lease->at("spec"), "leaseTransitions"), 1);
  two.Stop();
  EXPECT_EQ(b.started.load(), 1);
}

TEST(LeaderElectorTest, StopsLeadingAtOnceWhenRenewalsFail) {
  FakeKubeApi api;
  Candidate a;
  LeaderElector one(&api, a.Options("a"));
  one.Start();
  ASSERT_TRUE(Eventually([&] { return one.IsLeader(); }));
  api.FailNext(FakeKubeApi::Verb::kGet, 1000, absl::UnavailableError("apiserver down"));
  ASSERT_TRUE(Eventually([&] { return a.stopped.load() == 1; }, 3000));
  EXPECT_FALSE(one.IsLeader());
  EXPECT_TRUE(one.Done());
}

TEST(LeaderElectorTest, TakesAnExpiredLeaseByObservationTime) {
  FakeKubeApi api;
  // A lease held by a dead process whose renewTime is in the future by our clock (skew):
  // only our own observation of no change for leaseDurationSeconds frees it.
  ASSERT_TRUE(api.Create(kLeases, "pgbranch-system", testing::Obj(R"({
      "metadata":{"name":"pgbranch-operator"},
      "spec":{"holderIdentity":"dead","leaseDurationSeconds":1,
              "renewTime":"2999-01-01T00:00:00.000000Z","leaseTransitions":3}})"))
                  .ok());
  Candidate b;
  LeaderElector two(&api, b.Options("b"));
  absl::Time start = absl::Now();
  two.Start();
  ASSERT_TRUE(Eventually([&] { return two.IsLeader(); }, 3000));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(900));
  two.Stop();
}

}  // namespace
}  // namespace pgbranch::kube
