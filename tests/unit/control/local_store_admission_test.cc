// Local mode's admission (operator/local/local_store.h): create vs apply, what each object's
// result was, and the rules between objects checked before anything is stored — each refusal
// with its field, its detail and nothing left behind.
#include <gtest/gtest.h>

#include "operator/local/local_store.h"
#include "operator/model/field_error.h"
#include "operator/model/json.h"
#include "operator/model/manifest.h"
#include "tests/unit/control/control_fakes.h"

namespace pgbranch::cli {
namespace {

using control::ErrorDetail;
using control::ErrorField;
using control::ErrorReason;

std::vector<control::Resource> Parse(const std::string& yaml) {
  auto rs = control::ParseManifests(yaml);
  EXPECT_TRUE(rs.ok()) << rs.status();
  return rs.ok() ? *rs : std::vector<control::Resource>{};
}

std::string Branch(const std::string& name, const std::string& spec,
                   const std::string& meta_extra = "") {
  return "apiVersion: pgbranch.io/v1alpha1\nkind: Branch\nmetadata: {name: " + name + meta_extra +
         "}\nspec: " + spec + "\n---\n";
}
std::string Endpoint(const std::string& name, const std::string& spec) {
  return "apiVersion: pgbranch.io/v1alpha1\nkind: Endpoint\nmetadata: {name: " + name +
         "}\nspec: " + spec + "\n---\n";
}

bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

class LocalStoreAdmissionTest : public ::testing::Test {
 protected:
  LocalStoreAdmissionTest() : store_("", &clock_) {}

  absl::StatusOr<std::vector<LocalStore::Applied>> Create(const std::string& yaml) {
    LocalStore::ApplyOptions o;
    o.create_only = true;
    return store_.Apply(Parse(yaml), o);
  }
  void ExpectNothingStored(const std::string& what) {
    EXPECT_TRUE(store_.ListBranches("default").empty()) << what;
    EXPECT_TRUE(store_.ListEndpoints("default").empty()) << what;
  }
  // main with a timeline at the fake pageserver: LSNs 3..10 readable, commits one minute
  // apart ending now.
  void MainWithHistory() {
    ASSERT_TRUE(store_.Apply(Parse(Branch("main", "{noExpiry: true}"))).ok());
    control::BranchStatus st;
    st.tenant_id = "default";
    st.timeline_id = "main";
    ASSERT_TRUE(store_.UpdateBranchStatus("default", "main", st).ok());
    control::TimelineInfo& t = timelines_.timelines["main"];
    t.tenant_id = "default";
    t.timeline_id = "main";
    t.head_lsn = 10;
    t.oldest_readable_lsn = 3;
    for (uint64_t lsn = 0; lsn <= 10; ++lsn) {
      timelines_.commit_times["main"][lsn] = Now() - absl::Minutes(10 - lsn);
    }
    store_.SetTimelineService(&timelines_);
  }
  absl::Time Now() { return absl::FromUnixMicros(clock_.NowMicros()); }

  FakeClock clock_;
  LocalStore store_;
  control::testing::FakeTimelineService timelines_;
};

TEST_F(LocalStoreAdmissionTest, ApplyReportsCreatedConfiguredAndUnchanged) {
  auto r = store_.Apply(
      Parse(Branch("main", "{noExpiry: true}") + Branch("dev", "{parent: main, ttl: 1h}")));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].action, LocalStore::Action::kCreated);
  EXPECT_EQ((*r)[1].action, LocalStore::Action::kCreated);
  r = store_.Apply(
      Parse(Branch("main", "{noExpiry: true}") + Branch("dev", "{parent: main, ttl: 2h}")));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].action, LocalStore::Action::kUnchanged);
  EXPECT_EQ((*r)[1].action, LocalStore::Action::kConfigured);
  EXPECT_EQ(std::get<control::Branch>((*r)[1].object).metadata.generation, 2);
  // Labels alone are a change too, without a new generation.
  r = store_.Apply(Parse(Branch("main", "{noExpiry: true}", ", labels: {team: db}")));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].action, LocalStore::Action::kConfigured);
  EXPECT_EQ(std::get<control::Branch>((*r)[0].object).metadata.generation, 1);
  EXPECT_STREQ(LocalStore::ActionName(LocalStore::Action::kConfigured), "configured");
}

TEST_F(LocalStoreAdmissionTest, CreateOnAnExistingNameFailsAndChangesNothing) {
  ASSERT_TRUE(store_.Apply(Parse(Branch("main", "{noExpiry: true, protected: true}"))).ok());
  auto r = Create(Branch("new", "{noExpiry: true}") + Branch("main", "{noExpiry: true}"));
  ASSERT_TRUE(absl::IsAlreadyExists(r.status())) << r.status();
  EXPECT_EQ(r.status().message(),
            "branch \"main\" already exists; `pgbranch apply` changes an existing branch");
  EXPECT_EQ(ErrorField(r.status()), "metadata.name");
  EXPECT_EQ(ErrorReason(r.status()), "AlreadyExists");
  EXPECT_TRUE(store_.GetBranch("default", "main")->spec.protected_) << "spec not rewritten";
  EXPECT_FALSE(store_.GetBranch("default", "new")) << "all or nothing";
  // An endpoint too, and a name that is being deleted.
  ASSERT_TRUE(Create(Endpoint("ep", "{branch: main}")).ok());
  EXPECT_TRUE(absl::IsAlreadyExists(Create(Endpoint("ep", "{branch: main}")).status()));
  ASSERT_TRUE(store_.UserDeleteEndpoint("default", "ep").ok());
  auto again = Create(Endpoint("ep", "{branch: main}"));
  EXPECT_TRUE(absl::IsAlreadyExists(again.status()));
  EXPECT_TRUE(Contains(std::string(again.status().message()), "is being deleted"));
}

TEST_F(LocalStoreAdmissionTest, TheParentMustExistAndNotBeGoing) {
  auto r = store_.Apply(Parse(Branch("dev", "{parent: nope, noExpiry: true}")));
  ASSERT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  EXPECT_EQ(ErrorField(r.status()), "spec.parent");
  EXPECT_TRUE(Contains(ErrorDetail(r.status()), "branch \"nope\" does not exist"));
  EXPECT_TRUE(Contains(std::string(r.status().message()), "Branch \"dev\": spec.parent: "));
  ExpectNothingStored("refused");
  // Created by the same request, in any order.
  ASSERT_TRUE(store_
                  .Apply(Parse(Branch("dev", "{parent: main, noExpiry: true}") +
                               Branch("main", "{noExpiry: true}")))
                  .ok());
  ASSERT_TRUE(store_.Apply(Parse(Branch("gone", "{noExpiry: true}"))).ok());
  ASSERT_TRUE(store_.UserDeleteBranch("default", "gone").ok());
  r = store_.Apply(Parse(Branch("child", "{parent: gone, noExpiry: true}")));
  EXPECT_EQ(ErrorField(r.status()), "spec.parent");
  EXPECT_TRUE(Contains(ErrorDetail(r.status()), "is being deleted"));
}

TEST_F(LocalStoreAdmissionTest, ExpiryMustBeInTheFuture) {
  const std::string past = control::Rfc3339(Now() - absl::Hours(1));
  auto r = store_.Apply(Parse(Branch("dev", "{expireTime: \"" + past + "\"}")));
  ASSERT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  EXPECT_EQ(ErrorField(r.status()), "spec.expireTime");
  EXPECT_TRUE(Contains(ErrorDetail(r.status()), "is not in the future"));
  ExpectNothingStored("refused");
  // A ttl shortened below the branch's age would delete it at once.
  ASSERT_TRUE(store_.Apply(Parse(Branch("dev", "{ttl: 2h}"))).ok());
  clock_.Advance(absl::ToInt64Microseconds(absl::Hours(1)));
  r = store_.Apply(Parse(Branch("dev", "{ttl: 30m}")));
  EXPECT_EQ(ErrorField(r.status()), "spec.ttl");
  EXPECT_EQ(store_.GetBranch("default", "dev")->spec.ttl, absl::Hours(2));
}

TEST_F(LocalStoreAdmissionTest, TheEndpointsBranchMustExistOrComeWithIt) {
  auto r = store_.Apply(Parse(Endpoint("ep", "{branch: nope}")));
  ASSERT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  EXPECT_EQ(ErrorField(r.status()), "spec.branch");
  EXPECT_TRUE(Contains(ErrorDetail(r.status()), "branch \"nope\" does not exist"));
  int64_t version = store_.RoutesVersion();
  ExpectNothingStored("refused");
  EXPECT_EQ(store_.RoutesVersion(), version) << "no port was handed out";
  // One file with the branch and its endpoint is valid.
  r = store_.Apply(Parse(Endpoint("ep", "{branch: main}") + Branch("main", "{noExpiry: true}")));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(store_.GetEndpoint("default", "ep")->status.port, 0);
}

TEST_F(LocalStoreAdmissionTest, ASecondReadWriteEndpointIsRefusedNamingTheFirst) {
  ASSERT_TRUE(
      store_.Apply(Parse(Branch("dev", "{noExpiry: true}") + Endpoint("dev", "{branch: dev}")))
          .ok());
  const int64_t version = store_.RoutesVersion();
  auto r = Create(Endpoint("dev-2", "{branch: dev}"));
  ASSERT_TRUE(absl::IsFailedPrecondition(r.status())) << r.status();
  EXPECT_EQ(ErrorField(r.status()), "spec.type");
  EXPECT_EQ(ErrorReason(r.status()), "Conflict");
  EXPECT_TRUE(Contains(ErrorDetail(r.status()),
                       "branch \"dev\" already has a read-write endpoint, \"dev\""))
      << r.status();
  EXPECT_FALSE(store_.GetEndpoint("default", "dev-2"));
  EXPECT_EQ(store_.RoutesVersion(), version);
  // Two in one request: the whole request is refused.
  ASSERT_TRUE(store_.Apply(Parse(Branch("qa", "{noExpiry: true}"))).ok());
  r = store_.Apply(Parse(Endpoint("qa-1", "{branch: qa}") + Endpoint("qa-2", "{branch: qa}")));
  EXPECT_TRUE(absl::IsFailedPrecondition(r.status()));
  EXPECT_FALSE(store_.GetEndpoint("default", "qa-1"));
  // Read-only endpoints are not limited; a writer being deleted no longer counts.
  EXPECT_TRUE(Create(Endpoint("ro-1", "{branch: dev, type: ReadOnly}")).ok());
  EXPECT_TRUE(Create(Endpoint("ro-2", "{branch: dev, type: ReadOnly}")).ok());
  ASSERT_TRUE(store_.UserDeleteEndpoint("default", "dev").ok());
  EXPECT_TRUE(Create(Endpoint("dev-2", "{branch: dev}")).ok());
}

TEST_F(LocalStoreAdmissionTest, StartPointsOutsideTheParentsHistoryAreRefused) {
  MainWithHistory();
  struct Case {
    std::string spec, field, detail;
  } cases[] = {
      {"{parent: main, noExpiry: true, lsn: 11}", "spec.lsn",
       "LSN 11 is after the head of main (LSN 10)"},
      {"{parent: main, noExpiry: true, lsn: 2}", "spec.lsn",
       "LSN 2 is before the oldest point main can still be read ("},
      {"{parent: main, noExpiry: true, timestamp: \"" + control::Rfc3339(Now() + absl::Hours(1)) +
           "\"}",
       "spec.timestamp", "is in the future"},
      {"{parent: main, noExpiry: true, timestamp: \"" + control::Rfc3339(Now() - absl::Hours(1)) +
           "\"}",
       "spec.timestamp", "is before the oldest point main can still be read"},
      {"{parent: main, noExpiry: true, timestamp: \"" +
           control::Rfc3339(Now() - absl::Minutes(9) + absl::Seconds(1)) + "\"}",
       "spec.timestamp", "garbage-collected"},  // LSN 1 at that time: collected
  };
  for (const Case& c : cases) {
    auto r = store_.Apply(Parse(Branch("dev", c.spec)));
    ASSERT_TRUE(absl::IsInvalidArgument(r.status())) << c.spec << " -> " << r.status();
    EXPECT_EQ(ErrorField(r.status()), c.field) << c.spec;
    EXPECT_TRUE(Contains(ErrorDetail(r.status()), c.detail)) << r.status();
    EXPECT_FALSE(store_.GetBranch("default", "dev")) << c.spec;
  }
  // Inside the history: accepted.
  EXPECT_TRUE(store_.Apply(Parse(Branch("at-lsn", "{parent: main, noExpiry: true, lsn: 3}"))).ok());
  EXPECT_TRUE(
      store_
          .Apply(Parse(Branch("at-time", "{parent: main, noExpiry: true, timestamp: \"" +
                                             control::Rfc3339(Now() - absl::Minutes(2)) + "\"}")))
          .ok());
  // A read-only endpoint's past point is checked against its branch the same way.
  auto ro = store_.Apply(Parse(Endpoint("ro", "{branch: main, type: ReadOnly, lsn: 99}")));
  EXPECT_EQ(ErrorField(ro.status()), "spec.lsn") << ro.status();
  // An unreachable pageserver refuses rather than guesses.
  timelines_.available = false;
  auto down = store_.Apply(Parse(Branch("later", "{parent: main, noExpiry: true, lsn: 4}")));
  EXPECT_TRUE(absl::IsUnavailable(down.status())) << down.status();
  EXPECT_FALSE(store_.GetBranch("default", "later"));
}

TEST_F(LocalStoreAdmissionTest, SuspendAndStartRequestsAreAnnotationsThatApplyKeeps) {
  ASSERT_TRUE(
      store_.Apply(Parse(Branch("main", "{noExpiry: true}") + Endpoint("ep", "{branch: main}")))
          .ok());
  auto e = store_.RequestSuspend("default", "ep");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->metadata.annotations.at(control::kAnnotationSuspendRequestedAt),
            control::Rfc3339(Now()));
  auto r = store_.Apply(Parse(Endpoint("ep", "{branch: main}")));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].action, LocalStore::Action::kUnchanged);
  EXPECT_TRUE(store_.GetEndpoint("default", "ep")
                  ->metadata.annotations.count(control::kAnnotationSuspendRequestedAt));
  EXPECT_TRUE(store_.RequestStart("default", "ep").ok());
  EXPECT_TRUE(absl::IsNotFound(store_.RequestSuspend("default", "nope").status()));
}

}  // namespace
}  // namespace pgbranch::cli
