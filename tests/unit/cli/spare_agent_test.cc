#include "operator/local/spare_agent.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/process_util.h"

// The spare agent of local mode, with a shell script in place of pgbranch-compute: it records
// the line it was handed (or that it saw the end of its pipe) and, once handed a compute, runs
// until killed, as an agent would.
namespace pgbranch::cli {
namespace {

namespace fs = std::filesystem;

class SpareAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           absl::StrCat("spare_agent_test.", getpid(), ".",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "computes");
    root_ = (dir_ / "computes").string() + "/";
    script_ = (dir_ / "fake-compute").string();
    // $1 = --spare-under, $2 = ROOT. Each spare writes into its own file (by pid).
    std::ofstream(script_) << "#!/bin/sh\n"
                           << "if IFS= read -r line; then\n"
                           << "  printf '%s\\n' \"$line\" > \"$2/got.$$\"\n"
                           << "  exec sleep 60\n"
                           << "fi\n"
                           << "echo eof > \"$2/eof.$$\"\n";
    fs::permissions(script_, fs::perms::owner_all);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The pids of the live spares of this test (their command line names its root).
  std::vector<pid_t> Spares() const {
    return PidsWithCommandLine(absl::StrCat(SpareAgent::kFlag, " ", root_));
  }

  // Take(), retried until a spare is ready (it is started in the background).
  absl::StatusOr<pid_t> TakeWhenReady(SpareAgent& spare, const std::string& config) {
    absl::StatusOr<pid_t> pid = absl::UnavailableError("not tried");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      pid = spare.Take(config, (dir_ / "compute.log").string());
      if (pid.ok()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return pid;
  }

  std::string Read(const fs::path& p) const {
    for (int i = 0; i < 500 && !fs::exists(p); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::ifstream in(p);
    std::string s;
    std::getline(in, s);
    return s;
  }

  fs::path dir_;
  std::string root_;
  std::string script_;
};

TEST_F(SpareAgentTest, TakeHandsTheSpareItsComputeAndAReplacementFollows) {
  SpareAgent spare(script_, root_, "/dev/null", absl::Milliseconds(100));
  const std::string config = root_ + "a/compute.yaml";
  absl::StatusOr<pid_t> pid = TakeWhenReady(spare, config);
  ASSERT_TRUE(pid.ok()) << pid.status();
  EXPECT_EQ(Read(absl::StrCat(root_, "got.", *pid)),
            absl::StrCat(config, "\t", (dir_ / "compute.log").string()));
  // Handed over: no longer the spare (the next Take does not hand it a second compute).
  absl::StatusOr<pid_t> second = TakeWhenReady(spare, root_ + "b/compute.yaml");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE(*second, *pid);
  EXPECT_EQ(Read(absl::StrCat(root_, "got.", *second)),
            absl::StrCat(root_, "b/compute.yaml\t", (dir_ / "compute.log").string()));
  // The caller owns (and reaps) the computes it was given.
  for (pid_t p : {*pid, *second}) {
    ASSERT_EQ(::kill(p, SIGKILL), 0);
    ASSERT_EQ(::waitpid(p, nullptr, 0), p);
  }
}

TEST_F(SpareAgentTest, TakeRightAfterATakeFindsNoSpareInsteadOfWaiting) {
  SpareAgent spare(script_, root_, "/dev/null", absl::Seconds(30));
  absl::StatusOr<pid_t> pid = TakeWhenReady(spare, root_ + "a/compute.yaml");
  ASSERT_TRUE(pid.ok()) << pid.status();
  absl::StatusOr<pid_t> again = spare.Take(root_ + "b/compute.yaml", "/dev/null");
  EXPECT_TRUE(absl::IsUnavailable(again.status())) << again.status();
  ::kill(*pid, SIGKILL);
  ::waitpid(*pid, nullptr, 0);
}

TEST_F(SpareAgentTest, DestroyingItEndsTheSpareThroughItsPipe) {
  pid_t waiting = 0;
  {
    SpareAgent spare(script_, root_, "/dev/null", absl::Seconds(1));
    for (int i = 0; i < 1000 && waiting == 0; ++i) {
      std::vector<pid_t> s = Spares();
      if (!s.empty()) waiting = s[0];
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_NE(waiting, 0) << "no spare started";
  }
  // Reaped by the destructor, after it saw the end of its pipe (not a kill).
  EXPECT_TRUE(Spares().empty());
  EXPECT_EQ(Read(absl::StrCat(root_, "eof.", waiting)), "eof");
}

TEST_F(SpareAgentTest, ASpareThatDiedIsReplaced) {
  SpareAgent spare(script_, root_, "/dev/null", absl::Milliseconds(50));
  pid_t first = 0;
  for (int i = 0; i < 1000 && first == 0; ++i) {
    std::vector<pid_t> s = Spares();
    if (!s.empty()) first = s[0];
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_NE(first, 0) << "no spare started";
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  // Until it is dead -- a zombie, or reaped by the agent's keeper already -- not only gone from
  // the command lines: an exiting process loses its command line before it closes its end of the
  // pipe, and a Take in between hands it the compute (a spare that dies while it is being handed
  // over takes the compute with it, and the compute's monitor reports that as a failed start).
  // WNOWAIT: the agent still reaps it.
  for (int i = 0; i < 2000; ++i) {
    siginfo_t info{};
    if (::waitid(P_PID, first, &info, WEXITED | WNOHANG | WNOWAIT) != 0) break;  // ECHILD: reaped
    if (info.si_pid == first) break;                                             // a zombie
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // Never handed a compute dead: the next Take reports it or gets its replacement.
  absl::StatusOr<pid_t> pid = TakeWhenReady(spare, root_ + "a/compute.yaml");
  ASSERT_TRUE(pid.ok()) << pid.status();
  EXPECT_NE(*pid, first);
  EXPECT_EQ(Read(absl::StrCat(root_, "got.", *pid)),
            absl::StrCat(root_, "a/compute.yaml\t", (dir_ / "compute.log").string()));
  ::kill(*pid, SIGKILL);
  ::waitpid(*pid, nullptr, 0);
}

}  // namespace
}  // namespace pgbranch::cli
