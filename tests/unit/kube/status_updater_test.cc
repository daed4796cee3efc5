#include "operator/kube/status_updater.h"

#include "gtest/gtest.h"
#include "operator/kube/fake_kube_api.h"
#include "operator/kube/kube_object.h"
#include "tests/unit/kube/test_util.h"

namespace pgbranch::kube {
namespace {

using web::json::value;

TEST(StatusUpdaterTest, RetriesOnConflictAndSkipsNoOps) {
  FakeKubeApi api;
  ASSERT_TRUE(api.Create(kBranches, "ns", testing::Branch("ns", "b")).ok());
  int calls = 0;
  auto set_ready = [&](value& obj) {
    calls++;
    if (calls == 1) {
      // Someone else writes between our read and our write: our PUT conflicts.
      EXPECT_TRUE(api.Patch(kBranches, "ns", "b", PatchType::kMerge,
                            testing::Obj(R"({"metadata":{"labels":{"x":"y"}}})"))
                      .ok());
    }
    obj["status"] = testing::Obj(R"({"phase":"Ready"})");
    return absl::OkStatus();
  };
  auto out = UpdateStatusWithRetry(&api, kBranches, "ns", "b", set_ready);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(out->at("status").at("phase").as_string(), "Ready");
  EXPECT_EQ(LabelsOf(*out).at("x"), "y");

  int before = api.Calls(FakeKubeApi::Verb::kUpdateStatus);
  ASSERT_TRUE(UpdateStatusWithRetry(&api, kBranches, "ns", "b", set_ready).ok());
  EXPECT_EQ(api.Calls(FakeKubeApi::Verb::kUpdateStatus), before);  // nothing changed

  api.FailNext(FakeKubeApi::Verb::kUpdateStatus, 10, absl::AbortedError("409"));
  auto gave_up = UpdateStatusWithRetry(&api, kBranches, "ns", "b", [](value& obj) {
    obj["status"]["phase"] = value::string("Deleting");
    return absl::OkStatus();
  });
  EXPECT_EQ(gave_up.status().code(), absl::StatusCode::kAborted);
}

TEST(StatusUpdaterTest, FinalizersAddAndRemoveOnlyOurs) {
  FakeKubeApi api;
  ASSERT_TRUE(api.Create(kBranches, "ns", testing::Branch("ns", "b")).ok());
  auto added = AddFinalizer(&api, kBranches, "ns", "b", "pgbranch.io/timeline");
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_TRUE(HasFinalizer(*added, "pgbranch.io/timeline"));
  // A conflicting write on the first attempt: the test op fails, we re-read and retry.
  api.FailNext(FakeKubeApi::Verb::kPatch, 1, absl::AbortedError("409"));
  ASSERT_TRUE(AddFinalizer(&api, kBranches, "ns", "b", "other.io/keep").ok());
  ASSERT_TRUE(AddFinalizer(&api, kBranches, "ns", "b", "other.io/keep").ok());  // idempotent
  ASSERT_TRUE(api.Delete(kBranches, "ns", "b").ok());
  auto removed = RemoveFinalizer(&api, kBranches, "ns", "b", "pgbranch.io/timeline");
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_FALSE(HasFinalizer(*removed, "pgbranch.io/timeline"));
  EXPECT_TRUE(HasFinalizer(*removed, "other.io/keep"));
  EXPECT_TRUE(api.Get(kBranches, "ns", "b").ok());  // still held by the other finalizer
  ASSERT_TRUE(RemoveFinalizer(&api, kBranches, "ns", "b", "other.io/keep").ok());
  EXPECT_EQ(api.Get(kBranches, "ns", "b").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(RemoveFinalizer(&api, kBranches, "ns", "b", "other.io/keep").ok());
}

TEST(StatusUpdaterTest, OwnerReference) {
  FakeKubeApi api;
  auto owner = api.Create(kBranches, "ns", testing::Branch("ns", "b"));
  value ref = OwnerReference(*owner);
  EXPECT_EQ(ref.at("kind").as_string(), "Branch");
  EXPECT_EQ(ref.at("apiVersion").as_string(), "pgbranch.io/v1alpha1");
  EXPECT_EQ(ref.at("uid").as_string(), UidOf(*owner));
  EXPECT_TRUE(ref.at("controller").as_bool());
}

}  // namespace
}  // namespace pgbranch::kube
