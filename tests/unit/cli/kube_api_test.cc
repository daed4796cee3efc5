// The CLI's Kubernetes backend over the in-memory API (FakeKubeApi): the local controller's
// paths answered from custom resources, the messages of local mode, and API errors reworded.
#include "cli/kube_api.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "cli/api_errors.h"
#include "cli/cli_context.h"
#include "cli/command_line.h"
#include "cli/connection_info.h"
#include "cli/kube_target.h"
#include "cli/yaml_json.h"
#include "operator/kube/fake_kube_api.h"
#include "operator/model/json.h"

namespace pgbranch::cli {
namespace {

using control::JsonInt;
using control::JsonString;
using kube::FakeKubeApi;
using web::json::value;

constexpr char kNs[] = "team";

class KubeApiTest : public ::testing::Test {
 protected:
  KubeApiTest()
      : fake_(std::make_shared<FakeKubeApi>()),
        api_(std::make_shared<KubeApi>(fake_, kNs, "test cluster")),
        client_(std::shared_ptr<const ApiTransport>(api_)) {}

  absl::StatusOr<value> Post(const std::string& path, const std::string& body = "") {
    return client_.Post(path, body);
  }
  value Stored(const kube::Resource& r, const std::string& name) {
    auto v = fake_->Get(r, kNs, name);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *v : value::object();
  }
  void CreateBranch(const std::string& name, const std::string& extra = "noExpiry: true") {
    auto r = Post("/v1/create",
                  "apiVersion: pgbranch.io/v1alpha1\nkind: Branch\nmetadata: {name: " + name +
                      "}\nspec: {" + extra + "}\n");
    ASSERT_TRUE(r.ok()) << r.status();
  }

  std::shared_ptr<FakeKubeApi> fake_;
  std::shared_ptr<KubeApi> api_;
  ApiClient client_;
};

TEST_F(KubeApiTest, CreateMakesBranchAndEndpointInTheNamespace) {
  auto r = Post(
      "/v1/create",
      R"({"apiVersion":"pgbranch.io/v1alpha1","kind":"Branch","metadata":{"name":"main"},"spec":{"noExpiry":true}}
---
{"apiVersion":"pgbranch.io/v1alpha1","kind":"Endpoint","metadata":{"name":"main"},"spec":{"branch":"main","suspendTimeout":"1m"}})");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->at("results").size(), 2u);
  EXPECT_EQ(JsonString(r->at("results").at(0), "action"), "created");
  EXPECT_EQ(JsonString(r->at("results").at(1), "kind"), "Endpoint");
  value b = Stored(kube::kBranches, "main");
  EXPECT_TRUE(b.at("spec").at("noExpiry").as_bool());
  EXPECT_EQ(JsonString(b.at("metadata"), "namespace"), kNs);
  EXPECT_EQ(JsonString(Stored(kube::kEndpoints, "main").at("spec"), "suspendTimeout"), "1m");
  // Reads: items sorted by name, status always present, endpoints routed.
  auto list = client_.Get("/v1/endpoints");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->at("items").size(), 1u);
  EXPECT_TRUE(list->at("items").at(0).at("status").at("routed").as_bool());
  auto got = client_.Get("/v1/branches/main");
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->at("status").is_object());
}

TEST_F(KubeApiTest, CreateOfAnExistingNameChangesNothing) {
  CreateBranch("main");
  auto r = Post("/v1/create",
                "apiVersion: pgbranch.io/v1alpha1\nkind: Branch\nmetadata: {name: other}\nspec: "
                "{noExpiry: true}\n---\napiVersion: pgbranch.io/v1alpha1\nkind: Branch\nmetadata: "
                "{name: main}\nspec: {ttl: 1h}\n");
  ASSERT_TRUE(absl::IsAlreadyExists(r.status())) << r.status();
  EXPECT_EQ(r.status().message(),
            "branch \"main\" already exists; `pgbranch apply` changes an existing branch");
  EXPECT_TRUE(absl::IsNotFound(fake_->Get(kube::kBranches, kNs, "other").status()));
  EXPECT_FALSE(Stored(kube::kBranches, "main").at("spec").has_field("ttl"));
}

TEST_F(KubeApiTest, UnknownParentNamesTheFlag) {
  auto r = Post("/v1/create",
                "apiVersion: pgbranch.io/v1alpha1\nkind: Branch\nmetadata: {name: dev}\nspec: "
                "{parent: nope, noExpiry: true}\n");
  ASSERT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  EXPECT_EQ(WithFlagNames(r.status()).message(),
            "--parent: branch \"nope\" does not exist in namespace team; create it first or pick "
            "an existing parent");
  EXPECT_TRUE(absl::IsNotFound(fake_->Get(kube::kBranches, kNs, "dev").status()));
}

TEST_F(KubeApiTest, LocalValidationRunsFirst) {
  auto r = Post("/v1/create",
                "apiVersion: pgbranch.io/v1alpha1\nkind: Branch\nmetadata: {name: dev}\nspec: "
                "{ttl: 1h, noExpiry: true}\n");
  ASSERT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  EXPECT_EQ(fake_->Calls(FakeKubeApi::Verb::kCreate), 0);
}

TEST_F(KubeApiTest, SecondReadWriteEndpointIsRefused) {
  CreateBranch("main");
  ASSERT_TRUE(Post("/v1/create",
                   "apiVersion: pgbranch.io/v1alpha1\nkind: Endpoint\nmetadata: {name: a}\nspec: "
                   "{branch: main}\n")
                  .ok());
  auto r = Post("/v1/create",
                "apiVersion: pgbranch.io/v1alpha1\nkind: Endpoint\nmetadata: {name: b}\nspec: "
                "{branch: main}\n");
  ASSERT_TRUE(absl::IsFailedPrecondition(r.status())) << r.status();
  EXPECT_EQ(ApiErrorField(r.status()), "spec.type");
  EXPECT_NE(r.status().message().find("already has a read-write endpoint, \"a\""),
            std::string::npos);
}

TEST_F(KubeApiTest, ApplyReportsCreatedConfiguredUnchanged) {
  const std::string m =
      "apiVersion: pgbranch.io/v1alpha1\nkind: Branch\nmetadata: {name: main, labels: {a: "
      "\"1\"}}\nspec: {noExpiry: true}\n";
  auto r = Post("/v1/apply", m);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(JsonString(r->at("results").at(0), "action"), "created");
  r = Post("/v1/apply", m);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(JsonString(r->at("results").at(0), "action"), "unchanged");
  r = Post("/v1/apply",
           "apiVersion: pgbranch.io/v1alpha1\nkind: Branch\nmetadata: {name: main}\nspec: "
           "{noExpiry: true, protected: true}\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(JsonString(r->at("results").at(0), "action"), "configured");
  value b = Stored(kube::kBranches, "main");
  EXPECT_TRUE(b.at("spec").at("protected").as_bool());
  EXPECT_EQ(JsonString(b.at("metadata").at("labels"), "a"), "1");  // labels are kept
}

TEST_F(KubeApiTest, ApplyTakesKubectlGetOutput) {
  CreateBranch("main");
  value got = Stored(kube::kBranches, "main");
  got["status"] = value::parse(R"({"phase":"Ready"})");
  auto r = Post("/v1/apply", got.serialize());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(JsonString(r->at("results").at(0), "action"), "unchanged");
}

TEST_F(KubeApiTest, ApplyRefusesAnotherNamespace) {
  auto r = Post("/v1/apply",
                "apiVersion: pgbranch.io/v1alpha1\nkind: Branch\nmetadata: {name: x, namespace: "
                "prod}\nspec: {noExpiry: true}\n");
  ASSERT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  EXPECT_NE(r.status().message().find("run with -n prod"), std::string::npos);
}

TEST_F(KubeApiTest, NotFoundNamesTheNamespace) {
  auto r = client_.Get("/v1/branches/ghost");
  ASSERT_TRUE(absl::IsNotFound(r.status()));
  EXPECT_EQ(r.status().message(), "branch \"ghost\" not found in namespace team");
  r = client_.Delete("/v1/endpoints/ghost");
  EXPECT_EQ(r.status().message(), "endpoint \"ghost\" not found in namespace team");
}

TEST_F(KubeApiTest, DeleteRefusesProtectedAndParents) {
  CreateBranch("main", "noExpiry: true, protected: true");
  CreateBranch("dev", "parent: main, noExpiry: true");
  auto r = client_.Delete("/v1/branches/main");
  ASSERT_TRUE(absl::IsFailedPrecondition(r.status()));
  EXPECT_NE(r.status().message().find("is protected"), std::string::npos);
  ASSERT_TRUE(Post("/v1/apply",
                   "apiVersion: pgbranch.io/v1alpha1\nkind: Branch\nmetadata: {name: main}\nspec: "
                   "{noExpiry: true}\n")
                  .ok());
  r = client_.Delete("/v1/branches/main");
  EXPECT_EQ(r.status().message(), "branch \"main\" has child branches: dev; delete them first");
  ASSERT_TRUE(client_.Delete("/v1/branches/dev").ok());
  EXPECT_TRUE(absl::IsNotFound(fake_->Get(kube::kBranches, kNs, "dev").status()));
}

TEST_F(KubeApiTest, ResetRaisesResetGeneration) {
  CreateBranch("main");
  CreateBranch("dev", "parent: main, noExpiry: true");
  auto r = Post("/v1/branches/dev/reset");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(JsonInt(r->at("spec"), "resetGeneration"), 1);
  EXPECT_EQ(JsonInt(Stored(kube::kBranches, "dev").at("spec"), "resetGeneration"), 1);
  r = Post("/v1/branches/main/reset");
  EXPECT_EQ(r.status().message(), "branch \"main\" is a root branch: only a child can be reset");
}

// `branch restore --kube`: the keeping branch first, then the annotated resetGeneration; every
// refusal before anything is created.
TEST_F(KubeApiTest, RestoreCreatesTheKeepingBranchThenAsksForTheRestore) {
  CreateBranch("main", "noExpiry: true, protected: true");
  CreateBranch("rp", "parent: main, ttl: 7d");
  CreateBranch("other", "noExpiry: true");
  for (const char* name : {"main", "rp", "other"}) {
    value b = Stored(kube::kBranches, name);
    b["status"] = value::object();
    b["status"]["timelineID"] = value::string(std::string("t-") + name);
    ASSERT_TRUE(fake_->UpdateStatus(kube::kBranches, kNs, b).ok());
  }
  const std::string body = R"({"to":"rp","keepCurrentAs":"main-kept","allowProtected":false})";
  auto r = Post("/v1/branches/main/restore", body);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "needs --allow-protected")) << r.status();
  r = Post("/v1/branches/main/restore",
           R"({"to":"other","keepCurrentAs":"main-kept","allowProtected":true})");
  EXPECT_TRUE(absl::StrContains(r.status().message(), "is not a restore point of \"main\""))
      << r.status();
  r = Post("/v1/branches/main/restore",
           R"({"to":"ghost","keepCurrentAs":"main-kept","allowProtected":true})");
  EXPECT_TRUE(absl::IsNotFound(r.status())) << r.status();
  r = Post("/v1/branches/main/restore",
           R"({"to":"rp","keepCurrentAs":"other","allowProtected":true})");
  EXPECT_TRUE(absl::IsAlreadyExists(r.status())) << r.status();
  EXPECT_EQ(fake_->Calls(FakeKubeApi::Verb::kUpdate), 0);
  EXPECT_TRUE(absl::IsNotFound(fake_->Get(kube::kBranches, kNs, "main-kept").status()));

  r = Post("/v1/branches/main/restore",
           R"({"to":"rp","keepCurrentAs":"main-kept","allowProtected":true})");
  ASSERT_TRUE(r.ok()) << r.status();
  value main = Stored(kube::kBranches, "main");
  EXPECT_EQ(JsonInt(main.at("spec"), "resetGeneration"), 1);
  const value& a = main.at("metadata").at("annotations");
  EXPECT_EQ(JsonString(a, "pgbranch.io/restore-to"), "rp");
  EXPECT_EQ(JsonString(a, "pgbranch.io/restore-keep-current-as"), "main-kept");
  EXPECT_EQ(JsonString(a, "pgbranch.io/restore-generation"), "1");
  value kept = Stored(kube::kBranches, "main-kept");
  EXPECT_EQ(JsonString(kept.at("metadata").at("annotations"), "pgbranch.io/restore-of"), "main");
  EXPECT_FALSE(kept.at("spec").has_field("parent"));
}

// The update refused (the admission policy, a conflict): the keeping branch goes again.
TEST_F(KubeApiTest, RestoreLeavesNothingHalfMade) {
  CreateBranch("main");
  CreateBranch("rp", "parent: main, ttl: 7d");
  for (const char* name : {"main", "rp"}) {
    value b = Stored(kube::kBranches, name);
    b["status"] = value::object();
    b["status"]["timelineID"] = value::string(std::string("t-") + name);
    ASSERT_TRUE(fake_->UpdateStatus(kube::kBranches, kNs, b).ok());
  }
  fake_->FailNext(FakeKubeApi::Verb::kUpdate, 1, absl::PermissionDeniedError("denied"));
  auto r = Post("/v1/branches/main/restore", R"({"to":"rp","keepCurrentAs":"main-kept"})");
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsNotFound(fake_->Get(kube::kBranches, kNs, "main-kept").status()));
  EXPECT_EQ(JsonInt(Stored(kube::kBranches, "main").at("spec"), "resetGeneration"), 0);
}

TEST_F(KubeApiTest, SuspendAndStartAreTheOperatorsAnnotations) {
  CreateBranch("main");
  ASSERT_TRUE(Post("/v1/create",
                   "apiVersion: pgbranch.io/v1alpha1\nkind: Endpoint\nmetadata: {name: main}\n"
                   "spec: {branch: main}\n")
                  .ok());
  ASSERT_TRUE(Post("/v1/endpoints/main/suspend").ok());
  value a = Stored(kube::kEndpoints, "main").at("metadata").at("annotations");
  EXPECT_TRUE(control::ParseRfc3339(JsonString(a, "pgbranch.io/suspend-requested-at")).ok());
  ASSERT_TRUE(Post("/v1/endpoints/main/start").ok());
  a = Stored(kube::kEndpoints, "main").at("metadata").at("annotations");
  EXPECT_TRUE(control::ParseRfc3339(JsonString(a, "pgbranch.io/start-requested-at")).ok());
}

TEST_F(KubeApiTest, ApiErrorsAreReworded) {
  fake_->FailNext(FakeKubeApi::Verb::kList, 1,
                  absl::NotFoundError("the server could not find the requested resource"));
  auto r = client_.Get("/v1/branches");
  ASSERT_TRUE(absl::IsFailedPrecondition(r.status()));
  EXPECT_NE(r.status().message().find("pgbranch is not installed in test cluster"),
            std::string::npos);
  EXPECT_NE(r.status().message().find("docs/install.md"), std::string::npos);

  // An unknown API group: the API server answers a plain-text 404.
  fake_->FailNext(FakeKubeApi::Verb::kGet, 1, absl::NotFoundError("HTTP 404: 404 page not found"));
  r = Post("/v1/create",
           "apiVersion: pgbranch.io/v1alpha1\nkind: Branch\nmetadata: {name: a}\nspec: "
           "{noExpiry: true}\n");
  ASSERT_TRUE(absl::IsFailedPrecondition(r.status())) << r.status();
  EXPECT_NE(r.status().message().find("the CRDs are missing"), std::string::npos);

  fake_->FailNext(FakeKubeApi::Verb::kList, 1,
                  absl::PermissionDeniedError(
                      "endpoints.pgbranch.io is forbidden: User \"bob\" cannot list resource"));
  r = client_.Get("/v1/endpoints");
  ASSERT_TRUE(absl::IsPermissionDenied(r.status()));
  EXPECT_NE(r.status().message().find("may not list endpoints.pgbranch.io in namespace team"),
            std::string::npos);

  fake_->FailNext(FakeKubeApi::Verb::kGet, 1,
                  absl::UnavailableError("GET /apis/pgbranch.io/v1alpha1/namespaces/team/"
                                         "branches/x: Failed to connect"));
  r = client_.Get("/v1/branches/x");
  ASSERT_TRUE(absl::IsUnavailable(r.status()));
  EXPECT_NE(r.status().message().find("cannot reach the Kubernetes API server of test cluster"),
            std::string::npos);

  CreateBranch("main");
  fake_->FailNext(FakeKubeApi::Verb::kDelete, 1,
                  absl::PermissionDeniedError(
                      "branches.pgbranch.io \"main\" is forbidden: ValidatingAdmissionPolicy "
                      "'pgbranch-protected-branches' with binding 'pgbranch-protected-branches' "
                      "denied request: branch main is protected and cannot be deleted"));
  r = client_.Delete("/v1/branches/main");
  ASSERT_TRUE(absl::IsFailedPrecondition(r.status()));
  EXPECT_EQ(r.status().message(), "branch main is protected and cannot be deleted");

  fake_->FailNext(FakeKubeApi::Verb::kCreate, 1,
                  absl::InvalidArgumentError(
                      "Branch.pgbranch.io \"dev\" is invalid: spec.lsn: Invalid value: 0: must "
                      "be above zero"));
  r = Post("/v1/create",
           "apiVersion: pgbranch.io/v1alpha1\nkind: Branch\nmetadata: {name: dev}\nspec: "
           "{noExpiry: true}\n");
  ASSERT_TRUE(absl::IsInvalidArgument(r.status()));
  EXPECT_EQ(WithFlagNames(r.status()).message(), "--lsn: must be above zero");
}

TEST_F(KubeApiTest, ConnectionComesFromTheSecret) {
  value secret = value::parse(R"({"apiVersion":"v1","kind":"Secret",
    "metadata":{"name":"dev-credentials","namespace":"team"},
    "data":{"uri":"cG9zdGdyZXNxbDovL2FwcDpzM2NyZXRAZGV2LnRlYW0uc3ZjOjU0MzIvYXBwP29wdGlvbnM9ZW5kcG9pbnQlM0RkZXYudGVhbQ==",
            "host":"ZGV2LnRlYW0uc3Zj","port":"NTQzMg==","user":"YXBw","password":"czNjcmV0",
            "dbname":"YXBw","endpoint":"ZGV2LnRlYW0="}})");
  ASSERT_TRUE(fake_->Put(kube::kSecrets, secret).ok());
  auto ctx = CliContext::Create("/tmp/cli-unit-unused", false);
  ASSERT_TRUE(ctx.ok());
  ctx->SetKube(api_);
  value ep = value::parse(
      R"({"metadata":{"name":"dev"},"spec":{"branch":"dev"},"status":{"secretName":"dev-credentials"}})");
  auto c = EndpointConnection(*ctx, ep);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->uri, "postgresql://app:s3cret@dev.team.svc:5432/app?options=endpoint%3Ddev.team");
  EXPECT_EQ(c->port, 5432);
  EXPECT_EQ(c->password, "s3cret");
  ctx->SetProxyAddress("127.0.0.1:15432");
  c = EndpointConnection(*ctx, ep);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->uri, "postgresql://app:s3cret@127.0.0.1:15432/app?options=endpoint%3Ddev.team");
  // A read-only endpoint: the password of the branch's data, from its read-write endpoint.
  value ro_secret = secret;
  ro_secret["metadata"]["name"] = value::string("ro-credentials");
  ro_secret["data"]["password"] = value::string("b3RoZXI=");      // "other"
  ro_secret["data"]["endpoint"] = value::string("cm8udGVhbQ==");  // "ro.team"
  ASSERT_TRUE(fake_->Put(kube::kSecrets, ro_secret).ok());
  CreateBranch("dev");
  ASSERT_TRUE(Post("/v1/create",
                   "apiVersion: pgbranch.io/v1alpha1\nkind: Endpoint\nmetadata: {name: dev}\n"
                   "spec: {branch: dev}\n")
                  .ok());
  ctx->SetProxyAddress("");
  value ro = value::parse(
      R"({"metadata":{"name":"ro"},"spec":{"branch":"dev","type":"ReadOnly"},"status":{"secretName":"ro-credentials"}})");
  c = EndpointConnection(*ctx, ro);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->uri, "postgresql://app:s3cret@dev.team.svc:5432/app?options=endpoint%3Dro.team");
  // No Secret yet: say when it appears.
  ep["metadata"]["name"] = value::string("new");
  ep["status"]["secretName"] = value::string("new-credentials");
  c = EndpointConnection(*ctx, ep);
  ASSERT_TRUE(absl::IsFailedPrecondition(c.status()));
  EXPECT_NE(c.status().message().find("pgbranch endpoint start new"), std::string::npos);
}

TEST(YamlJsonTest, TypesPlainScalars) {
  auto docs = YamlDocumentsToJson("a: 1\nb: true\nc: \"1\"\nd: 5m\ne: ~\n---\n---\nx: [1, two]\n");
  ASSERT_TRUE(docs.ok()) << docs.status();
  ASSERT_EQ(docs->size(), 2u);
  EXPECT_EQ((*docs)[0].at("a").as_integer(), 1);
  EXPECT_TRUE((*docs)[0].at("b").as_bool());
  EXPECT_EQ((*docs)[0].at("c").as_string(), "1");
  EXPECT_EQ((*docs)[0].at("d").as_string(), "5m");
  EXPECT_TRUE((*docs)[0].at("e").is_null());
  EXPECT_EQ((*docs)[1].at("x").at(1).as_string(), "two");
}

// Backend choice: environment and files under a temporary HOME.
class BackendChoiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("cli-backend-test." + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_ / "state");
    std::filesystem::create_directories(dir_ / "home/.kube");
    ::setenv("HOME", (dir_ / "home").c_str(), 1);
    ::unsetenv("KUBECONFIG");
    ::unsetenv("KUBERNETES_SERVICE_HOST");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void WriteKubeconfig() {
    std::ofstream(dir_ / "home/.kube/config") << R"(apiVersion: v1
kind: Config
current-context: dev
contexts:
- name: dev
  context: {cluster: c, user: u, namespace: team}
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: abc}
)";
  }
  std::string State() const { return (dir_ / "state").string(); }
  std::filesystem::path dir_;
};

TEST_F(BackendChoiceTest, LocalWithoutKubeconfig) {
  auto c = ChooseBackend(KubeFlags{}, State(), false);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->kube, nullptr);
}

TEST_F(BackendChoiceTest, KubernetesWhenLocalModeIsNotRunning) {
  WriteKubeconfig();
  auto c = ChooseBackend(KubeFlags{}, State(), false);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_NE(c->kube, nullptr);
  EXPECT_TRUE(c->automatic);
  EXPECT_EQ(c->kube->ns(), "team");
  // A running local mode (its local.json) or a named state directory wins.
  std::ofstream(State() + "/local.json") << "{}";
  c = ChooseBackend(KubeFlags{}, State(), false);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->kube, nullptr);
  // Unless asked: -n is the namespace, and it implies Kubernetes.
  KubeFlags flags;
  flags.ns = "other";
  c = ChooseBackend(flags, State(), true);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_NE(c->kube, nullptr);
  EXPECT_FALSE(c->automatic);
  EXPECT_EQ(c->kube->ns(), "other");
}

TEST_F(BackendChoiceTest, ClearErrors) {
  KubeFlags flags;
  flags.kube = true;
  auto c = ChooseBackend(flags, State(), false);
  ASSERT_TRUE(absl::IsFailedPrecondition(c.status())) << c.status();
  EXPECT_NE(c.status().message().find("--kubeconfig"), std::string::npos);
  WriteKubeconfig();
  flags.context = "prod";
  c = ChooseBackend(flags, State(), false);
  ASSERT_TRUE(absl::IsNotFound(c.status())) << c.status();
  EXPECT_NE(c.status().message().find("context \"prod\" not found"), std::string::npos);
  EXPECT_NE(c.status().message().find("kubectl config get-contexts"), std::string::npos);
}

TEST(KubectlPluginTest, NamedKubectlPgbranch) {
  CommandLine cl;
  std::vector<const char*> argv = {"/usr/local/bin/kubectl-pgbranch",
                                   "branch",
                                   "create",
                                   "dev",
                                   "--parent",
                                   "main",
                                   "--wait=false"};
  EXPECT_EQ(cl.Parse(static_cast<int>(argv.size()), argv.data()), std::nullopt);
  EXPECT_TRUE(cl.kube_flags().plugin);
  EXPECT_TRUE(cl.kube_flags().Forced());
  EXPECT_FALSE(cl.branch_create().wait);
  CommandLine plain;
  std::vector<const char*> argv2 = {"pgbranch", "--context", "kind", "-n", "x", "branch", "list"};
  EXPECT_EQ(plain.Parse(static_cast<int>(argv2.size()), argv2.data()), std::nullopt);
  EXPECT_FALSE(plain.kube_flags().plugin);
  EXPECT_EQ(plain.kube_flags().context, "kind");
  EXPECT_EQ(plain.kube_flags().ns, "x");
}

}  // namespace
}  // namespace pgbranch::cli
