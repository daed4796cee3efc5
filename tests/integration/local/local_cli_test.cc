// The pgbranch CLI against a real local instance: create is create, apply reports what it did,
// flags are parsed completely before anything happens, errors name flags, LSNs in PostgreSQL's
// X/Y form, list --tree, endpoint suspend/start, branch update, -o json on create and delete.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tests/integration/local/local_mode_fixture.h"

namespace pgbranch::testing {
namespace {

class LocalCliTest : public ::testing::Test {
 protected:
  // One instance for the suite (starting one and initdb of main take most of the time).
  static void SetUpTestSuite() {
    local_ = new LocalMode();
    absl::Status up = local_->Up();
    ASSERT_TRUE(up.ok()) << up;
    CommandResult r = local_->Cli({"branch", "create", "main", "--protected"});
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
  }
  static void TearDownTestSuite() {
    delete local_;
    local_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(local_, nullptr); }

  static bool Exists(const std::string& kind, const std::string& name) {
    return local_->Cli({kind, "get", name}).exit_code == 0;
  }

  static LocalMode* local_;
};

LocalMode* LocalCliTest::local_ = nullptr;

// `local up` whose proxy port is taken fails, says why and what to do, and leaves none of the
// daemons it started running (the pageserver and the controller start before the proxy).
TEST(LocalUpTest, ATakenProxyPortIsExplainedAndNothingIsLeftRunning) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const std::string port = std::to_string(ntohs(a.sin_port));

  LocalMode local;  // not up: its state directory only
  CommandResult r = local.Cli({"local", "up", "--proxy-port", port});
  ::close(fd);
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_TRUE(absl::StrContains(r.err, "Address already in use")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, absl::StrCat("port ", port, " is taken"))) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "--proxy-port N")) << r.err;
  for (const auto& [pid, cmd] : CommandLines()) {
    EXPECT_FALSE(absl::StrContains(cmd, local.state_dir())) << pid << ": " << cmd;
  }
  // Nothing half-made: the next command says local mode is not running.
  CommandResult list = local.Cli({"branch", "list"});
  EXPECT_NE(list.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(list.err, "local mode is not running")) << list.Describe();
}

TEST_F(LocalCliTest, HelpAndVersion) {
  CommandResult v = local_->Cli({"--version"});
  EXPECT_EQ(v.exit_code, 0) << v.Describe();
  EXPECT_TRUE(absl::StartsWith(v.out, "pgbranch ")) << v.out;
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"branch", "create", "--help"},
        {"help", "branch", "create"},
        {"branch", "create", "x", "--bogus", "--help"}}) {
    CommandResult h = local_->Cli(args);
    EXPECT_EQ(h.exit_code, 0) << h.Describe();
    EXPECT_NE(h.out.find("usage: pgbranch branch create"), std::string::npos) << h.out;
    EXPECT_NE(h.out.find("--parent"), std::string::npos) << h.out;
    EXPECT_EQ(h.out.find("endpoint create"), std::string::npos) << "not the overview: " << h.out;
  }
  CommandResult e = local_->Cli({"endpoint", "start", "--help"});
  EXPECT_NE(e.out.find("usage: pgbranch endpoint start"), std::string::npos) << e.out;
  CommandResult top = local_->Cli({"--help"});
  EXPECT_NE(top.out.find("branch list [--tree]"), std::string::npos) << top.out;
}

TEST_F(LocalCliTest, UnknownFlagChangesNothing) {
  CommandResult r =
      local_->Cli({"endpoint", "create", "stray", "--branch", "main", "--no-endpoint"});
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
  EXPECT_NE(r.err.find("unknown flag --no-endpoint"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("run `pgbranch endpoint create --help`"), std::string::npos) << r.err;
  EXPECT_FALSE(Exists("endpoint", "stray"));
  CommandResult bogus = local_->Cli({"branch", "create", "stray", "--bogus"});
  EXPECT_EQ(bogus.exit_code, 2);
  EXPECT_NE(bogus.err.find("unknown flag --bogus"), std::string::npos) << bogus.err;
  EXPECT_EQ(bogus.err.find("needs a value"), std::string::npos) << bogus.err;
  EXPECT_FALSE(Exists("branch", "stray"));
}

TEST_F(LocalCliTest, BadValuesNameTheirFlag) {
  struct Case {
    std::vector<std::string> args;
    std::string want;
  } cases[] = {
      {{"branch", "create", "b1", "--parent", "main", "--lsn", "0/zz"}, "--lsn: "},
      {{"branch", "create", "b1", "--parent", "main", "--ttl", "2 hours"}, "--ttl: "},
      {{"branch", "create", "b1", "--parent", "main", "--at", "yesterday"}, "--at: "},
      {{"branch", "create", "b1", "--parent", "main", "--ttl", "1h", "--no-expiry"},
       "give only one of --ttl and --no-expiry"},
      {{"branch", "create", "b1", "--parent", "main", "--lsn", "0/1", "--at",
        "2026-01-01T00:00:00Z"},
       "give only one of --lsn and --at"},
  };
  for (const Case& c : cases) {
    CommandResult r = local_->Cli(c.args);
    EXPECT_EQ(r.exit_code, 2) << r.Describe();
    EXPECT_NE(r.err.find(c.want), std::string::npos) << r.err;
  }
  // Refused by the controller, reported under the flag the user typed.
  CommandResult parent = local_->Cli({"branch", "create", "b1", "--parent", "nope"});
  EXPECT_EQ(parent.exit_code, 1) << parent.Describe();
  EXPECT_NE(parent.err.find("--parent: "), std::string::npos) << parent.err;
  EXPECT_FALSE(Exists("branch", "b1"));
}

TEST_F(LocalCliTest, CreateOnAnExistingNameFailsAndChangesNothing) {
  CommandResult again = local_->Cli({"branch", "create", "main"});
  EXPECT_EQ(again.exit_code, 1) << again.Describe();
  EXPECT_NE(again.err.find("already exists"), std::string::npos) << again.err;
  web::json::value b = local_->CliJson({"branch", "get", "main"});
  ASSERT_TRUE(b.is_object());
  EXPECT_TRUE(b.at("spec").at("protected").as_bool()) << "create rewrote the spec";
  CommandResult ep = local_->Cli({"endpoint", "create", "main", "--branch", "main"});
  EXPECT_EQ(ep.exit_code, 1) << ep.Describe();
  EXPECT_NE(ep.err.find("already exists"), std::string::npos) << ep.err;
}

TEST_F(LocalCliTest, ApplyReportsCreatedConfiguredUnchanged) {
  auto manifest = [](bool prot) {
    return absl::StrCat(
        "apiVersion: pgbranch.io/v1alpha1\nkind: Branch\nmetadata:\n  name: applied\nspec:\n"
        "  parent: main\n  noExpiry: true\n  protected: ",
        prot ? "true" : "false", "\n");
  };
  CommandResult created = local_->Cli({"apply", "-f", "-"}, 180, manifest(false));
  EXPECT_EQ(created.exit_code, 0) << created.Describe();
  EXPECT_NE(created.out.find("branch/applied created"), std::string::npos) << created.out;
  CommandResult same = local_->Cli({"apply", "-f", "-"}, 180, manifest(false));
  EXPECT_NE(same.out.find("branch/applied unchanged"), std::string::npos) << same.out;
  CommandResult changed = local_->Cli({"apply", "-f", "-"}, 180, manifest(true));
  EXPECT_NE(changed.out.find("branch/applied configured"), std::string::npos) << changed.out;

  // branch update: the same path from flags.
  CommandResult unprotect = local_->Cli({"branch", "update", "applied", "--no-protected"});
  EXPECT_EQ(unprotect.exit_code, 0) << unprotect.Describe();
  EXPECT_NE(unprotect.out.find("branch \"applied\" configured"), std::string::npos)
      << unprotect.out;
  CommandResult nothing = local_->Cli({"branch", "update", "applied", "--no-protected"});
  EXPECT_NE(nothing.out.find("branch \"applied\" unchanged"), std::string::npos) << nothing.out;
  CommandResult ttl = local_->Cli({"branch", "update", "applied", "--ttl", "90m"});
  EXPECT_NE(ttl.out.find("configured"), std::string::npos) << ttl.Describe();
  web::json::value b = local_->CliJson({"branch", "get", "applied"});
  ASSERT_TRUE(b.is_object());
  EXPECT_FALSE(b.at("spec").has_field("protected") && b.at("spec").at("protected").as_bool());
  EXPECT_EQ(b.at("spec").at("ttl").as_string(), "1h30m");
  web::json::value deleted = local_->CliJson({"branch", "delete", "applied"});
  ASSERT_TRUE(deleted.is_object());
  EXPECT_EQ(deleted.at("deleted").at("name").as_string(), "applied");
}

TEST_F(LocalCliTest, BranchesAtAnXYLsnAndShowsBothForms) {
  // pgbranch LSNs number commits at the pageserver (docs/sizes-and-lsns.md); --lsn takes them in
  // PostgreSQL's X/Y spelling as `branch get` prints it, or as the decimal number.
  web::json::value main = local_->CliJson({"branch", "get", "main"});
  ASSERT_TRUE(main.is_object());
  uint64_t head = main.at("status").at("headLSN").as_number().to_uint64();
  ASSERT_GT(head, 0u);
  std::string lsn = absl::StrCat(absl::Hex(head >> 32, absl::kNoPad), "/",
                                 absl::Hex(head & 0xFFFFFFFFu, absl::kNoPad));
  for (auto& c : lsn) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  web::json::value created =
      local_->CliJson({"branch", "create", "at-lsn", "--parent", "main", "--lsn", lsn});
  ASSERT_TRUE(created.is_object());
  ASSERT_TRUE(created.has_field("branch") && created.has_field("endpoint"));
  EXPECT_EQ(created.at("branch").at("status").at("parentLSN").as_number().to_uint64(), head);
  EXPECT_EQ(local_->Query(local_->Connstr("at-lsn"), "SELECT 1"), "1");
  CommandResult get = local_->Cli({"branch", "get", "at-lsn"});
  EXPECT_NE(get.out.find(absl::StrCat("parent LSN       ", lsn, " (", head, ")")),
            std::string::npos)
      << get.out;
  EXPECT_NE(get.out.find("ReadWrite"), std::string::npos) << get.out;
  EXPECT_NE(get.out.find("psql '"), std::string::npos) << get.out;

  CommandResult tree = local_->Cli({"branch", "list", "--tree"});
  EXPECT_EQ(tree.exit_code, 0) << tree.Describe();
  size_t main_at = tree.out.find("\nmain ");
  size_t child_at = tree.out.find("-- at-lsn");
  EXPECT_NE(main_at, std::string::npos) << tree.out;
  EXPECT_NE(child_at, std::string::npos) << tree.out;
  EXPECT_LT(main_at, child_at) << tree.out;
  web::json::value deleted = local_->CliJson({"branch", "delete", "at-lsn"});
  ASSERT_TRUE(deleted.is_object());
  EXPECT_EQ(deleted.at("deleted").at("endpoints").size(), 1u);
}

TEST_F(LocalCliTest, EndpointSuspendAndStart) {
  CommandResult s = local_->Cli({"endpoint", "suspend", "main"});
  EXPECT_EQ(s.exit_code, 0) << s.Describe();
  EXPECT_TRUE(local_->WaitPhase("main", "Suspended"));
  CommandResult start = local_->Cli({"endpoint", "start", "main"});
  EXPECT_EQ(start.exit_code, 0) << start.Describe();
  EXPECT_NE(start.out.find("psql '"), std::string::npos) << start.out;
  EXPECT_TRUE(local_->WaitPhase("main", "Running"));
  EXPECT_EQ(local_->Query(local_->Connstr("main"), "SELECT 1"), "1");
}

}  // namespace
}  // namespace pgbranch::testing
