#include "operator/kube/fake_kube_api.h"

#include "gtest/gtest.h"
#include "operator/kube/json_patch.h"
#include "operator/kube/kube_object.h"
#include "tests/unit/kube/test_util.h"

namespace pgbranch::kube {
namespace {

using testing::Branch;
using testing::Obj;

TEST(FakeKubeApiTest, GenerationFollowsSpecOnlyAndStatusIsASubresource) {
  FakeKubeApi api;
  auto created = api.Create(kBranches, "ns", Branch("ns", "b"));
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(IntField(created->at("metadata"), "generation"), 1);
  EXPECT_FALSE(UidOf(*created).empty());

  web::json::value with_status = *created;
  with_status["status"] = Obj(R"({"phase":"Ready"})");
  auto s = api.UpdateStatus(kBranches, "ns", with_status);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(IntField(s->at("metadata"), "generation"), 1);
  EXPECT_NE(ResourceVersionOf(*s), ResourceVersionOf(*created));

  // A stale resourceVersion conflicts.
  EXPECT_EQ(api.Update(kBranches, "ns", *created).status().code(), absl::StatusCode::kAborted);
  web::json::value spec = *s;
  spec["spec"]["parent"] = web::json::value::string("other");
  spec["status"] = Obj(R"({"phase":"Ignored"})");
  auto u = api.Update(kBranches, "ns", spec);
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(IntField(u->at("metadata"), "generation"), 2);
  EXPECT_EQ(u->at("status").at("phase").as_string(), "Ready");  // PUT does not touch status
  EXPECT_EQ(api.Create(kBranches, "ns", Branch("ns", "b")).status().code(),
            absl::StatusCode::kAlreadyExists);
}

TEST(FakeKubeApiTest, DeleteWaitsForFinalizers) {
  FakeKubeApi api;
  auto b = Branch("ns", "b");
  b["metadata"]["finalizers"] = Obj(R"(["pgbranch.io/timeline"])");
  ASSERT_TRUE(api.Create(kBranches, "ns", b).ok());
  ASSERT_TRUE(api.Delete(kBranches, "ns", "b").ok());
  auto marked = api.Get(kBranches, "ns", "b");
  ASSERT_TRUE(marked.ok());
  EXPECT_FALSE(MetaString(*marked, "deletionTimestamp").empty());
  auto gone = api.Patch(kBranches, "ns", "b", PatchType::kMerge,
                        Obj(R"({"metadata":{"finalizers":null}})"));
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_EQ(api.Get(kBranches, "ns", "b").status().code(), absl::StatusCode::kNotFound);
}

TEST(FakeKubeApiTest, ListSelectsByLabel) {
  FakeKubeApi api;
  auto a = Branch("ns", "a");
  auto b = Branch("ns", "b");
  b["metadata"]["labels"]["app"] = web::json::value::string("web");
  ASSERT_TRUE(api.Create(kBranches, "ns", a).ok());
  ASSERT_TRUE(api.Create(kBranches, "ns", b).ok());
  ASSERT_TRUE(api.Create(kBranches, "other", Branch("other", "c")).ok());
  EXPECT_EQ(api.List(kBranches, "ns", {.label_selector = "app=db"})->items.size(), 1u);
  EXPECT_EQ(api.List(kBranches, "ns", {.label_selector = "app!=db"})->items.size(), 1u);
  EXPECT_EQ(api.List(kBranches, "", {.label_selector = "app in (db,web)"})->items.size(), 3u);
  EXPECT_EQ(api.List(kBranches, "", {.label_selector = "!app"})->items.size(), 0u);
}

TEST(FakeKubeApiTest, FaultInjection) {
  FakeKubeApi api;
  api.FailNext(FakeKubeApi::Verb::kGet, 2, absl::UnavailableError("503"));
  EXPECT_EQ(api.Get(kBranches, "ns", "x").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(api.Get(kBranches, "ns", "x").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(api.Get(kBranches, "ns", "x").status().code(), absl::StatusCode::kNotFound);
}

TEST(JsonPatchTest, OpsAndTest) {
  auto doc = Obj(R"({"a":{"b":[1,2]},"c":"x"})");
  auto out = ApplyJsonPatch(doc, Obj(R"([{"op":"test","path":"/c","value":"x"},
      {"op":"add","path":"/a/b/1","value":9},{"op":"remove","path":"/a/b/0"},
      {"op":"replace","path":"/c","value":"y"},{"op":"add","path":"/a/b/-","value":3}])"));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->serialize(), R"({"a":{"b":[9,2,3]},"c":"y"})");
  auto failed = ApplyJsonPatch(doc, Obj(R"([{"op":"test","path":"/c","value":"z"}])"));
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ApplyMergePatch(doc, Obj(R"({"a":null,"d":1})")).serialize(), R"({"c":"x","d":1})");
}

}  // namespace
}  // namespace pgbranch::kube
