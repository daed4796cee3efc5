// Local mode refuses bad input at once, through the controller's real HTTP API (the CLI's own
// wording of these errors is tested with the CLI): each request below is refused with its field
// and a message that names the readable range or the existing object, and afterwards nothing is
// left — no object in GET /v1/branches|endpoints, no directory under STATE/computes/, no route
// (port). Also: create vs apply and their per-object results, one read-write endpoint per
// branch, and endpoint suspend/start. Real pageserver, controller, proxy, computes, PostgreSQL.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/cpprest.h"
#include "tests/integration/local/local_mode_fixture.h"

namespace pgbranch::testing {
namespace {

namespace fs = std::filesystem;
using web::json::value;

struct Reply {
  int code = 0;
  value body;
};

std::string Yaml(const std::string& kind, const std::string& name, const std::string& spec,
                 const std::string& meta_extra = "") {
  return absl::StrCat("apiVersion: pgbranch.io/v1alpha1\nkind: ", kind, "\nmetadata: {name: ", name,
                      meta_extra, "}\nspec: ", spec, "\n---\n");
}

class LocalValidationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    local_ = new LocalMode();
    absl::Status s = local_->Up();
    ASSERT_TRUE(s.ok()) << s;
    CommandResult r = local_->Cli({"branch", "create", "main", "--protected"});
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    std::string uri = local_->Connstr("main");
    local_->Query(uri, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)");
  }
  static void TearDownTestSuite() {
    delete local_;
    local_ = nullptr;
  }

  static Reply Call(const web::http::method& method, const std::string& path,
                    const std::string& body = "") {
    std::ifstream in(local_->state_dir() + "/run/controller.port");
    int port = 0;
    in >> port;
    web::http::client::http_client client(absl::StrCat("http://127.0.0.1:", port));
    web::http::http_request req(method);
    req.set_request_uri(path);
    if (!body.empty()) req.set_body(body, "application/yaml");
    Reply out;
    try {
      web::http::http_response resp = client.request(req).get();
      out.code = resp.status_code();
      out.body = resp.extract_json(true).get();
    } catch (const std::exception& e) {
      ADD_FAILURE() << path << ": " << e.what();
    }
    return out;
  }
  static std::set<std::string> Names(const std::string& collection) {
    std::set<std::string> out;
    Reply r = Call(web::http::methods::GET, "/v1/" + collection);
    for (const auto& item : r.body.at("items").as_array()) {
      out.insert(item.at("metadata").at("name").as_string());
    }
    return out;
  }
  static std::set<std::string> ComputeDirs() {
    std::set<std::string> out;
    std::error_code ec;
    for (const auto& d : fs::directory_iterator(local_->state_dir() + "/computes", ec)) {
      out.insert(d.path().filename().string());
    }
    return out;
  }
  static std::set<int> RoutePorts() {
    std::set<int> out;
    Reply r = Call(web::http::methods::GET, "/v1/routes?version=0&wait=0");
    for (const auto& route : r.body.at("routes").as_array()) {
      out.insert(route.at("port").as_integer());
    }
    return out;
  }
  static value Branch(const std::string& name) {
    return Call(web::http::methods::GET, "/v1/branches/" + name).body;
  }

  static LocalMode* local_;
};

LocalMode* LocalValidationTest::local_ = nullptr;

TEST_F(LocalValidationTest, BadInputIsRefusedAtOnceAndLeavesNothingBehind) {
  const value main = Branch("main");
  const uint64_t head = main.at("status").at("headLSN").as_number().to_uint64();
  const std::set<std::string> branches = Names("branches"), endpoints = Names("endpoints");
  const std::set<std::string> dirs = ComputeDirs();
  const std::set<int> ports = RoutePorts();
  ASSERT_EQ(branches, std::set<std::string>{"main"});
  ASSERT_EQ(endpoints, std::set<std::string>{"main"});

  const std::string future =
      absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now() + absl::Hours(24), absl::UTCTimeZone());
  const std::string past =
      absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now() - absl::Hours(1), absl::UTCTimeZone());
  struct Case {
    std::string what, path, body;
    int code;
    std::string field, detail;
  } cases[] = {
      {"missing parent", "/v1/create", Yaml("Branch", "dev", "{parent: nope, noExpiry: true}"), 400,
       "spec.parent", "branch \"nope\" does not exist"},
      {"LSN after the head", "/v1/create",
       Yaml("Branch", "dev",
            absl::StrCat("{parent: main, noExpiry: true, lsn: ", head + 1000000, "}")),
       400, "spec.lsn", "is after the head of main (LSN "},
      {"time before main existed", "/v1/create",
       Yaml("Branch", "dev", "{parent: main, noExpiry: true, timestamp: \"2020-01-01T00:00:00Z\"}"),
       400, "spec.timestamp",
       "2020-01-01T00:00:00Z is before the oldest point main can still be read ("},
      {"time in the future", "/v1/create",
       Yaml("Branch", "dev", "{parent: main, noExpiry: true, timestamp: \"" + future + "\"}"), 400,
       "spec.timestamp", "is in the future"},
      {"expireTime in the past", "/v1/apply",
       Yaml("Branch", "dev", "{parent: main, expireTime: \"" + past + "\"}"), 400,
       "spec.expireTime", "is not in the future"},
      {"endpoint of a missing branch", "/v1/create", Yaml("Endpoint", "dev", "{branch: nope}"), 400,
       "spec.branch", "branch \"nope\" does not exist"},
      {"second read-write endpoint", "/v1/create", Yaml("Endpoint", "main-2", "{branch: main}"),
       409, "spec.type", "branch \"main\" already has a read-write endpoint, \"main\""},
      {"create on an existing name", "/v1/create", Yaml("Branch", "main", "{noExpiry: true}"), 409,
       "metadata.name", "branch \"main\" already exists"},
      {"a good branch with a bad endpoint: all or nothing", "/v1/apply",
       Yaml("Branch", "dev", "{parent: main, noExpiry: true}") +
           Yaml("Endpoint", "dev", "{branch: dev}") + Yaml("Endpoint", "dev-2", "{branch: dev}"),
       409, "spec.type", "already has a read-write endpoint, \"dev\""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    const absl::Time start = absl::Now();
    Reply r = Call(web::http::methods::POST, c.path, c.body);
    // Not asserted (no timed assertions): that the answer came at once, not after a timeout.
    std::cout << c.what << ": HTTP " << r.code << " in "
              << absl::FormatDuration(absl::Now() - start) << ": " << r.body.serialize() << "\n";
    EXPECT_EQ(r.code, c.code);
    ASSERT_TRUE(r.body.is_object());
    EXPECT_EQ(r.body.at("field").as_string(), c.field);
    EXPECT_TRUE(absl::StrContains(r.body.at("detail").as_string(), c.detail))
        << r.body.at("detail").as_string();
    EXPECT_TRUE(
        absl::StrContains(r.body.at("message").as_string(), r.body.at("detail").as_string()));
    EXPECT_EQ(Names("branches"), branches);
    EXPECT_EQ(Names("endpoints"), endpoints);
    EXPECT_EQ(ComputeDirs(), dirs);
    EXPECT_EQ(RoutePorts(), ports);
  }
  EXPECT_TRUE(Branch("main").at("spec").at("protected").as_bool()) << "create did not rewrite it";
}

TEST_F(LocalValidationTest, CreateAndApplyReportWhatTheyDid) {
  const std::string dev = Yaml("Branch", "ci", "{parent: main, noExpiry: true}");
  auto action = [](const Reply& r) {
    EXPECT_EQ(r.code, 200) << r.body.serialize();
    return r.body.at("results").at(0).at("action").as_string();
  };
  Reply created = Call(web::http::methods::POST, "/v1/create", dev);
  EXPECT_EQ(action(created), "created");
  EXPECT_EQ(created.body.at("results").at(0).at("kind").as_string(), "Branch");
  EXPECT_EQ(created.body.at("items").at(0).at("metadata").at("name").as_string(), "ci");
  EXPECT_EQ(action(Call(web::http::methods::POST, "/v1/apply", dev)), "unchanged");
  EXPECT_EQ(action(Call(
                web::http::methods::POST, "/v1/apply",
                Yaml("Branch", "ci", "{parent: main, noExpiry: true}", ", labels: {run: \"2\"}"))),
            "configured");
  Reply again = Call(web::http::methods::POST, "/v1/create", dev);
  EXPECT_EQ(again.code, 409);
  EXPECT_EQ(again.body.at("reason").as_string(), "AlreadyExists");
  // A start point inside main's history is accepted and becomes a branch.
  const uint64_t head = Branch("main").at("status").at("headLSN").as_number().to_uint64();
  Reply at = Call(
      web::http::methods::POST, "/v1/create",
      Yaml("Branch", "at-lsn", absl::StrCat("{parent: main, noExpiry: true, lsn: ", head, "}")));
  EXPECT_EQ(action(at), "created");
  for (const char* name : {"ci", "at-lsn"}) {
    EXPECT_EQ(Call(web::http::methods::DEL, absl::StrCat("/v1/branches/", name)).code, 200);
  }
}

TEST_F(LocalValidationTest, SuspendStopsTheComputeAndStartBringsItBack) {
  // Whether a pagefs mount's command line carries the commit channel (local mode's default).
  auto pagefs_on_commit_channel = [] {
    const std::string needle = "--commit-channel unix:" + local_->state_dir() + "/run/pc.sock";
    for (const auto& [pid, cmd] : CommandLines()) {
      if (cmd.find("pagefs") != std::string::npos && cmd.find(needle) != std::string::npos) {
        return true;
      }
    }
    return false;
  };
  ASSERT_TRUE(local_->WaitPhase("main", "Running"));
  ASSERT_EQ(local_->PostmastersRunning(), 1);
  // A write committed over the commit channel survives the compute's stop and start.
  EXPECT_TRUE(pagefs_on_commit_channel()) << "pagefs does not use the commit channel";
  local_->Query(local_->Connstr("main"), "CREATE TABLE over_channel AS SELECT 42 AS v");
  Reply s = Call(web::http::methods::POST, "/v1/endpoints/main/suspend");
  ASSERT_EQ(s.code, 200) << s.body.serialize();
  EXPECT_EQ(s.body.at("status").at("phase").as_string(), "Suspended");
  EXPECT_EQ(local_->PostmastersRunning(), 0);
  EXPECT_FALSE(local_->Mounted("main"));
  Reply st = Call(web::http::methods::POST, "/v1/endpoints/main/start");
  ASSERT_EQ(st.code, 200) << st.body.serialize();
  ASSERT_TRUE(local_->WaitPhase("main", "Running"));
  EXPECT_EQ(local_->Query(local_->Connstr("main"), "SELECT count(*) FROM t"), "1");
  EXPECT_EQ(local_->Query(local_->Connstr("main"), "SELECT v FROM over_channel"), "42");
  EXPECT_TRUE(pagefs_on_commit_channel()) << "the restarted pagefs does not use the commit channel";
  EXPECT_EQ(Call(web::http::methods::POST, "/v1/endpoints/nope/suspend").code, 404);
}

}  // namespace
}  // namespace pgbranch::testing
