#include "operator/k8s/kube_object_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <mutex>

#include "operator/control/conditions.h"
#include "operator/kube/fake_kube_api.h"
#include "operator/kube/kube_object.h"
#include "tests/unit/k8s/k8s_test_util.h"

namespace pgbranch::k8s {
namespace {

using Verb = kube::FakeKubeApi::Verb;
using testing::BranchJson;
using testing::Obj;
using web::json::value;

// The store over a FakeKubeApi, with "caches" that read the fake directly, unless a test pins a
// stale copy of an object (an informer that has not seen the latest event yet).
class KubeObjectStoreTest : public ::testing::Test {
 protected:
  KubeObjectStoreTest()
      : store_(
            &api_,
            [this](const kube::Resource& r, const std::string& ns,
                   const std::string& name) -> std::optional<value> {
              {
                std::lock_guard<std::mutex> l(mu_);
                auto it = stale_.find(ns + "/" + name);
                if (it != stale_.end()) return it->second;
              }
              auto o = api_.Get(r, ns, name);
              if (!o.ok()) return std::nullopt;
              return *o;
            },
            [this](const kube::Resource& r, const std::string& ns) {
              auto l = api_.List(r, ns);
              return l.ok() ? l->items : std::vector<value>{};
            }) {}

  value PutBranch(const value& obj) {
    auto put = api_.Put(kube::kBranches, obj);
    EXPECT_TRUE(put.ok()) << put.status();
    return put.ok() ? *put : value::object();
  }
  value Fetch(const std::string& name) {
    auto o = api_.Get(kube::kBranches, "ns", name);
    EXPECT_TRUE(o.ok()) << o.status();
    return o.ok() ? *o : value::object();
  }
  void PinStale(const std::string& name, const value& obj) {
    std::lock_guard<std::mutex> l(mu_);
    stale_["ns/" + name] = obj;
  }
  void Unpin(const std::string& name) {
    std::lock_guard<std::mutex> l(mu_);
    stale_.erase("ns/" + name);
  }

  static control::BranchStatus ReadyStatus(const std::string& timeline) {
    control::BranchStatus st;
    st.phase = control::kPhaseReady;
    st.tenant_id = "ns";
    st.timeline_id = timeline;
    st.head_lsn = 42;
    control::SetCondition(&st.conditions, "Ready", true, "Ready", "the branch is ready", 1,
                          absl::FromUnixSeconds(1'800'000'000));
    return st;
  }

  kube::FakeKubeApi api_;
  std::mutex mu_;
  std::map<std::string, value> stale_;
  KubeObjectStore store_;
};

TEST_F(KubeObjectStoreTest, UpdateBranchStatusWritesOnlyStatus) {
  value created = PutBranch(BranchJson("ns", "main"));
  const int64_t gen = created.at("metadata").at("generation").as_number().to_int64();
  ASSERT_TRUE(store_.UpdateBranchStatus("ns", "main", ReadyStatus("tl-1")).ok());

  value now = Fetch("main");
  EXPECT_EQ(now.at("metadata").at("generation").as_number().to_int64(), gen);
  EXPECT_EQ(now.at("spec"), created.at("spec"));
  EXPECT_EQ(testing::StatusString(now, "timelineID"), "tl-1");
  EXPECT_EQ(testing::StatusString(now, "phase"), "Ready");
  EXPECT_EQ(testing::Ready(now), std::make_pair(std::string("True"), std::string("Ready")));
  EXPECT_EQ(api_.Calls(Verb::kUpdateStatus), 1);
  EXPECT_EQ(api_.Calls(Verb::kUpdate), 0);

  auto b = store_.GetBranch("ns", "main");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->status.timeline_id, "tl-1");
  EXPECT_EQ(b->metadata.namespace_, "ns");
  EXPECT_EQ(b->metadata.uid, kube::UidOf(created));
}

TEST_F(KubeObjectStoreTest, NoOpStatusWriteMakesNoApiCall) {
  PutBranch(BranchJson("ns", "main"));
  ASSERT_TRUE(store_.UpdateBranchStatus("ns", "main", ReadyStatus("tl-1")).ok());
  const std::string rv = kube::ResourceVersionOf(Fetch("main"));
  ASSERT_EQ(api_.Calls(Verb::kUpdateStatus), 1);
  ASSERT_TRUE(store_.UpdateBranchStatus("ns", "main", ReadyStatus("tl-1")).ok());
  EXPECT_EQ(api_.Calls(Verb::kUpdateStatus), 1);
  EXPECT_EQ(kube::ResourceVersionOf(Fetch("main")), rv);
}

TEST_F(KubeObjectStoreTest, ConflictIsRetried) {
  PutBranch(BranchJson("ns", "main"));
  api_.FailNext(Verb::kUpdateStatus, 1, absl::AbortedError("the object has been modified"));
  ASSERT_TRUE(store_.UpdateBranchStatus("ns", "main", ReadyStatus("tl-1")).ok());
  EXPECT_EQ(api_.Calls(Verb::kUpdateStatus), 2);
  EXPECT_EQ(testing::StatusString(Fetch("main"), "timelineID"), "tl-1");
}

TEST_F(KubeObjectStoreTest, RealConflictFromAStaleCacheIsRetried) {
  value old = PutBranch(BranchJson("ns", "main"));
  PinStale("main", old);
  // Someone else changes the object: the cached resourceVersion is now stale.
  value changed = Fetch("main");
  changed["metadata"]["labels"] = Obj(R"({"team":"a"})");
  ASSERT_TRUE(api_.Update(kube::kBranches, "ns", changed).ok());
  ASSERT_TRUE(store_.UpdateBranchStatus("ns", "main", ReadyStatus("tl-1")).ok());
  EXPECT_EQ(api_.Calls(Verb::kUpdateStatus), 2);  // 409, re-read, success
  value now = Fetch("main");
  EXPECT_EQ(testing::StatusString(now, "timelineID"), "tl-1");
  EXPECT_EQ(kube::LabelsOf(now)["team"], "a");  // the other writer's change survives
}

TEST_F(KubeObjectStoreTest, PersistentConflictGivesUp) {
  PutBranch(BranchJson("ns", "main"));
  api_.FailNext(Verb::kUpdateStatus, 100, absl::AbortedError("conflict"));
  absl::Status s = store_.UpdateBranchStatus("ns", "main", ReadyStatus("tl-1"));
  EXPECT_TRUE(absl::IsAborted(s)) << s;
  EXPECT_LE(api_.Calls(Verb::kUpdateStatus), 10);
}

TEST_F(KubeObjectStoreTest, DeletedObjectIsNotFound) {
  EXPECT_TRUE(absl::IsNotFound(store_.UpdateBranchStatus("ns", "nope", ReadyStatus("tl"))));
  // Still in a lagging cache, gone at the API server.
  value old = PutBranch(BranchJson("ns", "main"));
  PinStale("main", old);
  ASSERT_TRUE(api_.Delete(kube::kBranches, "ns", "main").ok());
  absl::Status s = store_.UpdateBranchStatus("ns", "main", ReadyStatus("tl"));
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
}

TEST_F(KubeObjectStoreTest, ReadYourWritesOverAStaleCache) {
  value old = PutBranch(BranchJson("ns", "main"));
  PinStale("main", old);
  ASSERT_TRUE(store_.UpdateBranchStatus("ns", "main", ReadyStatus("tl-1")).ok());
  // The cache still shows no status; the store shows what it wrote.
  auto b = store_.GetBranch("ns", "main");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->status.timeline_id, "tl-1");
  auto listed = store_.ListBranches("ns");
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].status.timeline_id, "tl-1");
  // And a second identical write is recognised as a no-op against the overlay.
  ASSERT_TRUE(store_.UpdateBranchStatus("ns", "main", ReadyStatus("tl-1")).ok());
  EXPECT_EQ(api_.Calls(Verb::kUpdateStatus), 1);

  // The cache catches up with a newer version (someone else's write): the cache wins.
  value newer = Fetch("main");
  newer["status"]["timelineID"] = value::string("tl-other");
  ASSERT_TRUE(api_.UpdateStatus(kube::kBranches, "ns", newer).ok());
  Unpin("main");
  EXPECT_EQ(store_.GetBranch("ns", "main")->status.timeline_id, "tl-other");
}

TEST_F(KubeObjectStoreTest, ObjectGoneFromTheCacheIsGone) {
  PutBranch(BranchJson("ns", "main"));
  ASSERT_TRUE(store_.UpdateBranchStatus("ns", "main", ReadyStatus("tl-1")).ok());
  ASSERT_TRUE(api_.Delete(kube::kBranches, "ns", "main").ok());
  EXPECT_FALSE(store_.GetBranch("ns", "main").has_value());
  EXPECT_TRUE(store_.ListBranches("ns").empty());
}

TEST_F(KubeObjectStoreTest, EnsureFinalizerAddsItOnce) {
  PutBranch(BranchJson("ns", "main"));
  auto has = store_.EnsureFinalizer(kube::kBranches, "ns", "main");
  ASSERT_TRUE(has.ok()) << has.status();
  EXPECT_TRUE(*has);
  has = store_.EnsureFinalizer(kube::kBranches, "ns", "main");
  ASSERT_TRUE(has.ok());
  EXPECT_TRUE(*has);
  EXPECT_EQ(api_.Calls(Verb::kPatch), 1);
  value obj = Fetch("main");
  ASSERT_EQ(obj.at("metadata").at("finalizers").size(), 1u);
  EXPECT_EQ(obj.at("metadata").at("finalizers").at(0).as_string(), kFinalizer);
  // Generation untouched: metadata only.
  EXPECT_EQ(obj.at("metadata").at("generation").as_number().to_int64(), 1);
}

TEST_F(KubeObjectStoreTest, EnsureFinalizerAppendsToSomeoneElses) {
  value b = BranchJson("ns", "main");
  b["metadata"]["finalizers"] = Obj(R"(["other.io/keep"])");
  PutBranch(b);
  auto has = store_.EnsureFinalizer(kube::kBranches, "ns", "main");
  ASSERT_TRUE(has.ok() && *has);
  value obj = Fetch("main");
  ASSERT_EQ(obj.at("metadata").at("finalizers").size(), 2u);
  EXPECT_TRUE(testing::HasFinalizerNamed(obj, "other.io/keep"));
  EXPECT_TRUE(testing::HasFinalizerNamed(obj, kFinalizer));
}

TEST_F(KubeObjectStoreTest, EnsureFinalizerOnAStaleCacheRetries) {
  value old = PutBranch(BranchJson("ns", "main"));
  PinStale("main", old);
  value changed = Fetch("main");
  changed["metadata"]["labels"] = Obj(R"({"x":"y"})");
  ASSERT_TRUE(api_.Update(kube::kBranches, "ns", changed).ok());
  auto has = store_.EnsureFinalizer(kube::kBranches, "ns", "main");
  ASSERT_TRUE(has.ok()) << has.status();
  EXPECT_TRUE(*has);
  EXPECT_TRUE(testing::HasFinalizerNamed(Fetch("main"), kFinalizer));
}

TEST_F(KubeObjectStoreTest, EnsureFinalizerTooLateOnADeletingObject) {
  value b = BranchJson("ns", "main");
  b["metadata"]["finalizers"] = Obj(R"(["other.io/keep"])");
  PutBranch(b);
  ASSERT_TRUE(api_.Delete(kube::kBranches, "ns", "main").ok());
  auto has = store_.EnsureFinalizer(kube::kBranches, "ns", "main");
  ASSERT_TRUE(has.ok()) << has.status();
  EXPECT_FALSE(*has);
  EXPECT_FALSE(testing::HasFinalizerNamed(Fetch("main"), kFinalizer));
  EXPECT_TRUE(absl::IsNotFound(store_.EnsureFinalizer(kube::kBranches, "ns", "nope").status()));
}

TEST_F(KubeObjectStoreTest, RemoveBranchKeepsSomeoneElsesFinalizer) {
  for (const char* order : {R"(["other.io/keep","pgbranch.io/finalizer"])",
                            R"(["pgbranch.io/finalizer","other.io/keep"])"}) {
    SCOPED_TRACE(order);
    value b = BranchJson("ns", "main");
    b["metadata"]["finalizers"] = Obj(order);
    PutBranch(b);
    ASSERT_TRUE(api_.Delete(kube::kBranches, "ns", "main").ok());
    ASSERT_TRUE(store_.RemoveBranch("ns", "main").ok());
    value obj = Fetch("main");  // still there: the other finalizer holds it
    ASSERT_EQ(obj.at("metadata").at("finalizers").size(), 1u);
    EXPECT_EQ(obj.at("metadata").at("finalizers").at(0).as_string(), "other.io/keep");
    EXPECT_FALSE(kube::MetaString(obj, "deletionTimestamp").empty());
    // Idempotent.
    EXPECT_TRUE(store_.RemoveBranch("ns", "main").ok());
    EXPECT_EQ(Fetch("main").at("metadata").at("finalizers").size(), 1u);
    // The other controller lets go: the object is deleted.
    value clear = Fetch("main");
    clear["metadata"]["finalizers"] = value::array();
    ASSERT_TRUE(api_.Update(kube::kBranches, "ns", clear).ok());
    EXPECT_TRUE(absl::IsNotFound(api_.Get(kube::kBranches, "ns", "main").status()));
  }
}

TEST_F(KubeObjectStoreTest, RemoveBranchOnAMovedListUsesTheFreshIndex) {
  // The cache thinks ours is at index 0; someone prepended a finalizer meanwhile.
  value b = BranchJson("ns", "main");
  b["metadata"]["finalizers"] = Obj(R"(["pgbranch.io/finalizer"])");
  value old = PutBranch(b);
  PinStale("main", old);
  value moved = Fetch("main");
  moved["metadata"]["finalizers"] = Obj(R"(["other.io/keep","pgbranch.io/finalizer"])");
  ASSERT_TRUE(api_.Update(kube::kBranches, "ns", moved).ok());
  ASSERT_TRUE(store_.RemoveBranch("ns", "main").ok());
  value obj = Fetch("main");
  ASSERT_EQ(obj.at("metadata").at("finalizers").size(), 1u);
  EXPECT_EQ(obj.at("metadata").at("finalizers").at(0).as_string(), "other.io/keep");
}

TEST_F(KubeObjectStoreTest, RemoveLastFinalizerDeletes) {
  value b = BranchJson("ns", "main");
  b["metadata"]["finalizers"] = Obj(R"(["pgbranch.io/finalizer"])");
  PutBranch(b);
  ASSERT_TRUE(store_.RequestBranchDeletion("ns", "main").ok());
  EXPECT_TRUE(store_.GetBranch("ns", "main")->metadata.deletion_timestamp.has_value());
  ASSERT_TRUE(store_.RemoveBranch("ns", "main").ok());
  EXPECT_TRUE(absl::IsNotFound(api_.Get(kube::kBranches, "ns", "main").status()));
  EXPECT_TRUE(store_.RemoveBranch("ns", "main").ok());  // gone: fine
  EXPECT_TRUE(store_.RequestBranchDeletion("ns", "main").ok());
}

TEST_F(KubeObjectStoreTest, UnparseableObjectsAreSkipped) {
  PutBranch(BranchJson("ns", "good"));
  // No expiry at all: the model refuses it (the CRD would too).
  PutBranch(Obj(R"({"apiVersion":"pgbranch.io/v1alpha1","kind":"Branch",
                    "metadata":{"name":"bad","namespace":"ns"},"spec":{}})"));
  auto list = store_.ListBranches("ns");
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].metadata.name, "good");
  EXPECT_FALSE(store_.GetBranch("ns", "bad").has_value());
}

TEST_F(KubeObjectStoreTest, EndpointStatusGoesThroughTheHook) {
  KubeObjectStore store(
      &api_,
      [this](const kube::Resource& r, const std::string& ns,
             const std::string& name) -> std::optional<value> {
        auto o = api_.Get(r, ns, name);
        return o.ok() ? std::optional<value>(*o) : std::nullopt;
      },
      [this](const kube::Resource& r, const std::string& ns) { return api_.List(r, ns)->items; },
      [](const control::Endpoint& e, control::EndpointStatus* st) {
        st->host = e.metadata.name + ".proxy";
        st->port = 5432;
      });
  ASSERT_TRUE(api_.Put(kube::kEndpoints, testing::EndpointJson("ns", "ep", "main")).ok());
  control::EndpointStatus st;
  st.phase = control::kPhaseRunning;
  ASSERT_TRUE(store.UpdateEndpointStatus("ns", "ep", st).ok());
  value obj = *api_.Get(kube::kEndpoints, "ns", "ep");
  EXPECT_EQ(testing::StatusString(obj, "host"), "ep.proxy");
  EXPECT_EQ(testing::StatusString(obj, "phase"), "Running");
  auto eps = store.ListEndpoints("ns");
  ASSERT_EQ(eps.size(), 1u);
  EXPECT_EQ(eps[0].status.port, 5432);
}

TEST(NewerVersionTest, Numeric) {
  EXPECT_TRUE(NewerVersion("10", "9"));
  EXPECT_FALSE(NewerVersion("9", "10"));
  EXPECT_FALSE(NewerVersion("10", "10"));
  EXPECT_FALSE(NewerVersion("abc", "10"));
  EXPECT_TRUE(NewerVersion("10", ""));
  EXPECT_FALSE(NewerVersion("", "10"));
}

}  // namespace
}  // namespace pgbranch::k8s
