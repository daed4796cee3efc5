#include "operator/local/local_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "operator/model/manifest.h"

namespace pgbranch::cli {
namespace {

std::vector<control::Resource> Parse(const std::string& yaml) {
  auto rs = control::ParseManifests(yaml);
  EXPECT_TRUE(rs.ok()) << rs.status();
  return rs.ok() ? *rs : std::vector<control::Resource>{};
}

std::string BranchYaml(const std::string& name, const std::string& spec) {
  return "apiVersion: pgbranch.io/v1alpha1\nkind: Branch\nmetadata: {name: " + name +
         "}\nspec: " + spec + "\n---\n";
}

class LocalStoreTest : public ::testing::Test {
 protected:
  FakeClock clock_;
};

TEST_F(LocalStoreTest, DeleteOfABranchWithChildrenIsRefusedNamingThem) {
  LocalStore store("", &clock_);
  ASSERT_TRUE(store
                  .Apply(Parse(BranchYaml("main", "{noExpiry: true}") +
                               BranchYaml("dev", "{parent: main, noExpiry: true}") +
                               BranchYaml("qa", "{parent: main, noExpiry: true}")))
                  .ok());
  absl::Status s = store.UserDeleteBranch("default", "main");
  EXPECT_TRUE(absl::IsFailedPrecondition(s));
  EXPECT_NE(s.message().find("dev, qa"), std::string::npos) << s;
  EXPECT_TRUE(store.UserDeleteBranch("default", "dev").ok());
  EXPECT_TRUE(store.GetBranch("default", "dev")->metadata.deletion_timestamp);
}

TEST_F(LocalStoreTest, ProtectedBranchRefusesDeleteAndReset) {
  LocalStore store("", &clock_);
  ASSERT_TRUE(
      store
          .Apply(Parse(BranchYaml("main", "{noExpiry: true}") +
                       BranchYaml("prod", "{parent: main, noExpiry: true, protected: true}")))
          .ok());
  absl::Status del = store.UserDeleteBranch("default", "prod");
  EXPECT_TRUE(absl::IsFailedPrecondition(del));
  EXPECT_NE(del.message().find("protected"), std::string::npos);
  auto reset = store.RequestReset("default", "prod");
  EXPECT_TRUE(absl::IsFailedPrecondition(reset.status()));
  // Declaratively too: raising resetGeneration on a protected branch is refused.
  auto up = store.Apply(Parse(
      BranchYaml("prod", "{parent: main, noExpiry: true, protected: true, resetGeneration: 1}")));
  EXPECT_TRUE(absl::IsFailedPrecondition(up.status())) << up.status();
  EXPECT_TRUE(absl::IsFailedPrecondition(store.RequestReset("default", "main").status()))
      << "a root branch has no parent to reset from";
}

TEST_F(LocalStoreTest, SpecChangesRaiseTheGenerationAndImmutableFieldsAreRefused) {
  LocalStore store("", &clock_);
  ASSERT_TRUE(store
                  .Apply(Parse(BranchYaml("main", "{noExpiry: true}") +
                               BranchYaml("dev", "{parent: main, ttl: 1h}")))
                  .ok());
  EXPECT_EQ(store.GetBranch("default", "dev")->metadata.generation, 1);
  ASSERT_TRUE(store.Apply(Parse(BranchYaml("dev", "{parent: main, ttl: 1h}"))).ok());
  EXPECT_EQ(store.GetBranch("default", "dev")->metadata.generation, 1) << "no-op apply";
  ASSERT_TRUE(store.Apply(Parse(BranchYaml("dev", "{parent: main, ttl: 2h}"))).ok());
  EXPECT_EQ(store.GetBranch("default", "dev")->metadata.generation, 2);
  auto moved = store.Apply(Parse(BranchYaml("dev", "{noExpiry: true}")));
  EXPECT_TRUE(absl::IsInvalidArgument(moved.status()));
  EXPECT_NE(moved.status().message().find("immutable"), std::string::npos);
}

TEST_F(LocalStoreTest, AFileAppliesCompletelyOrNotAtAll) {
  LocalStore store("", &clock_);
  ASSERT_TRUE(store.Apply(Parse(BranchYaml("main", "{noExpiry: true}"))).ok());
  auto r = store.Apply(Parse(BranchYaml("new", "{noExpiry: true}") +
                             BranchYaml("main", "{parent: new, noExpiry: true}")));
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(store.GetBranch("default", "new")) << "the first document was rolled back";
}

TEST_F(LocalStoreTest, ObjectsAndPortsSurviveARestart) {
  std::string path = ::testing::TempDir() + "/objects-" + std::to_string(::getpid()) + ".json";
  int port = 0;
  {
    LocalStore store(path, &clock_);
    ASSERT_TRUE(store
                    .Apply(Parse(BranchYaml("main", "{noExpiry: true, protected: true}") +
                                 "apiVersion: pgbranch.io/v1alpha1\nkind: Endpoint\nmetadata: "
                                 "{name: main}\nspec: {branch: main, suspendTimeout: 30s}\n"))
                    .ok());
    port = store.GetEndpoint("default", "main")->status.port;
    EXPECT_GT(port, 0);
  }
  LocalStore again(path, &clock_);
  ASSERT_TRUE(again.Load().ok());
  auto b = again.GetBranch("default", "main");
  ASSERT_TRUE(b);
  EXPECT_TRUE(b->spec.protected_);
  EXPECT_FALSE(b->metadata.uid.empty());
  auto e = again.GetEndpoint("default", "main");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status.port, port);
  EXPECT_EQ(e->spec.suspend_timeout, absl::Seconds(30));
  ::unlink(path.c_str());
}

}  // namespace
}  // namespace pgbranch::cli
