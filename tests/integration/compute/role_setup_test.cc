// The role step (compute/role_setup.h) against a real PostgreSQL 15: what it creates, that it
// leaves a current verifier alone (no commit), that it follows a changed one, and that it refuses
// a server in recovery.
#include "compute/role_setup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "compute/ddl_capture.h"
#include "gtest/gtest.h"
#include "tests/support/pageserver_process.h"
#include "tests/support/postgres_instance.h"

namespace pgbranch::compute {
namespace {

using testing::PostgresInstance;
using testing::TempDir;

class RoleSetupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    chmod(dir_.path().c_str(), 0755);
    PostgresInstance::Options o;
    o.data_dir = dir_.path() + "/pgdata";
    o.socket_dir = dir_.path() + "/sock";
    o.settings = {"fsync=off"};
    pg_ = std::make_unique<PostgresInstance>(o);
    absl::Status s = pg_->InitDb(/*no_sync=*/true);
    if (s.ok()) s = pg_->Start();
    ASSERT_TRUE(s.ok()) << s;
  }

  std::string Conninfo(const std::string& db) const {
    return absl::StrCat("host=", pg_->socket_dir(), " port=", pg_->port(),
                        " user=postgres dbname=", db);
  }

  absl::Status SetUp(const std::string& password) {
    return SetUpRole(Conninfo("app"), Conninfo("postgres"), "app", "app", password);
  }

  // The role's verifier and the xmin of its pg_authid row (a new row version on every ALTER).
  std::string Verifier() const {
    return *pg_->Query("SELECT rolpassword || ' ' || xmin FROM pg_authid WHERE rolname = 'app'");
  }

  TempDir dir_;
  std::unique_ptr<PostgresInstance> pg_;
};

TEST_F(RoleSetupTest, CreatesRoleDatabaseAndCaptureThenAltersOnlyAChangedVerifier) {
  ASSERT_TRUE(SetUp("first-password").ok());
  EXPECT_EQ(*pg_->Query("SELECT rolcanlogin FROM pg_authid WHERE rolname = 'app'"), "t");
  EXPECT_EQ(*pg_->Query("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'app'"),
            "app");
  EXPECT_EQ(*pg_->Query("SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace "
                        "WHERE nspname = 'pgbranch'",
                        "app"),
            kDdlCaptureVersion);
  const std::string first = Verifier();
  EXPECT_EQ(first.rfind("SCRAM-SHA-256$", 0), 0u) << first;

  // Same password, everything in place: nothing is written (the row keeps its xmin).
  ASSERT_TRUE(SetUp("first-password").ok());
  EXPECT_EQ(Verifier(), first);

  // A changed password (a new branch's own): the verifier follows.
  ASSERT_TRUE(SetUp("second-password").ok());
  EXPECT_NE(Verifier(), first);

  // A pre-hashed verifier is set as given (local mode hands the compute its branch's).
  const std::string verifier =
      *pg_->Query("SELECT rolpassword FROM pg_authid WHERE rolname = 'app'");
  ASSERT_TRUE(SetUp("third-password").ok());
  ASSERT_TRUE(SetUp(verifier).ok());
  EXPECT_EQ(*pg_->Query("SELECT rolpassword FROM pg_authid WHERE rolname = 'app'"), verifier);
}

TEST_F(RoleSetupTest, ReinstallsAnOutdatedCapture) {
  ASSERT_TRUE(SetUp("pw").ok());
  ASSERT_TRUE(pg_->Query("COMMENT ON SCHEMA pgbranch IS 'pgbranch DDL capture v0'", "app").ok());
  ASSERT_TRUE(SetUp("pw").ok());
  EXPECT_EQ(*pg_->Query("SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace "
                        "WHERE nspname = 'pgbranch'",
                        "app"),
            kDdlCaptureVersion);
}

TEST_F(RoleSetupTest, RefusesAServerInRecovery) {
  ASSERT_TRUE(SetUp("pw").ok());
  ASSERT_TRUE(pg_->Stop().ok());
  // A hot standby with no WAL source: consistent at once after the clean stop, read-only.
  const std::string signal = pg_->data_dir() + "/standby.signal";
  int fd = open(signal.c_str(), O_CREAT | O_WRONLY, 0600);
  ASSERT_GE(fd, 0);
  close(fd);
  ASSERT_TRUE(pg_->Start({"hot_standby=on"}).ok()) << pg_->LogTail();
  ASSERT_EQ(*pg_->Query("SELECT pg_is_in_recovery()"), "t");
  absl::Status s = SetUp("pw");
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_NE(s.message().find("recovery"), std::string::npos) << s;
}

}  // namespace
}  // namespace pgbranch::compute
