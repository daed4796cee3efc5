// Parsing only: nothing here reaches a controller (Parse() runs no command).
#include "cli/command_line.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <vector>

namespace pgbranch::cli {
namespace {

std::optional<int> ParseArgs(CommandLine& cl, std::initializer_list<const char*> args) {
  std::vector<const char*> argv = {"pgbranch"};
  argv.insert(argv.end(), args.begin(), args.end());
  return cl.Parse(static_cast<int>(argv.size()), argv.data());
}

TEST(CommandLineTest, FillsBranchCreate) {
  CommandLine cl;
  EXPECT_EQ(ParseArgs(cl, {"branch", "create", "dev", "--parent", "main", "--lsn", "0/1A2B3C8",
                           "--protected", "--ttl", "2h", "-o", "json"}),
            std::nullopt);
  EXPECT_EQ(cl.Chosen(), "branch create");
  EXPECT_EQ(cl.branch_create().name, "dev");
  EXPECT_EQ(cl.branch_create().parent, "main");
  EXPECT_EQ(cl.branch_create().lsn, 0x1A2B3C8u);
  EXPECT_TRUE(cl.branch_create().protected_);
  EXPECT_EQ(cl.branch_create().ttl, "2h");
}

TEST(CommandLineTest, DecimalLsn) {
  CommandLine cl;
  EXPECT_EQ(ParseArgs(cl, {"endpoint", "create", "ro", "--branch", "main", "--type", "read-only",
                           "--lsn", "27443144"}),
            std::nullopt);
  EXPECT_EQ(cl.endpoint_create().lsn, 27443144u);
  EXPECT_EQ(cl.endpoint_create().type, "read-only");
}

TEST(CommandLineTest, FillsBranchPromote) {
  CommandLine cl;
  EXPECT_EQ(ParseArgs(cl, {"branch", "promote", "dev", "--check", "a.sql", "--check", "b.sql",
                           "--check-command", "make test", "--allow-protected",
                           "--restore-point-ttl", "2d"}),
            std::nullopt);
  EXPECT_EQ(cl.Chosen(), "branch promote");
  EXPECT_EQ(cl.promote().branch, "dev");
  EXPECT_FALSE(cl.promote().dry_run);
  EXPECT_EQ(cl.promote().checks, (std::vector<std::string>{"a.sql", "b.sql"}));
  EXPECT_EQ(cl.promote().check_command, "make test");
  EXPECT_TRUE(cl.promote().allow_protected);
  EXPECT_EQ(cl.promote().restore_point_ttl, "2d");
  CommandLine defaults;
  EXPECT_EQ(ParseArgs(defaults, {"branch", "promote", "dev", "--dry-run", "--file", "m.sql"}),
            std::nullopt);
  EXPECT_TRUE(defaults.promote().dry_run);
  EXPECT_EQ(defaults.promote().file, "m.sql");
  EXPECT_EQ(defaults.promote().restore_point_ttl, "7d");
  EXPECT_FALSE(defaults.promote().keep_restore_point);
}

TEST(CommandLineTest, FillsBranchRestoreAndNeedsTheRestorePoint) {
  CommandLine cl;
  EXPECT_EQ(ParseArgs(cl, {"branch", "restore", "main", "--to", "main-before-promote-1",
                           "--keep-current-as", "main-old", "--allow-protected"}),
            std::nullopt);
  EXPECT_EQ(cl.Chosen(), "branch restore");
  EXPECT_EQ(cl.restore().parent, "main");
  EXPECT_EQ(cl.restore().to, "main-before-promote-1");
  EXPECT_EQ(cl.restore().keep_current_as, "main-old");
  EXPECT_TRUE(cl.restore().allow_protected);
  CommandLine defaults, missing, no_name;
  EXPECT_EQ(ParseArgs(defaults, {"branch", "restore", "main", "--to", "rp"}), std::nullopt);
  EXPECT_EQ(defaults.restore().keep_current_as, "");
  EXPECT_FALSE(defaults.restore().allow_protected);
  EXPECT_EQ(ParseArgs(missing, {"branch", "restore", "main"}), 2);
  EXPECT_EQ(ParseArgs(no_name, {"branch", "restore", "--to", "rp"}), 2);
}

TEST(CommandLineTest, RefusesContradictoryPromoteFlags) {
  CommandLine a, b, c, d;
  EXPECT_EQ(ParseArgs(a, {"branch", "promote", "dev", "--dry-run", "--allow-protected"}), 2);
  EXPECT_EQ(ParseArgs(b, {"branch", "promote", "dev", "--restore-point-ttl", "1d",
                          "--keep-restore-point"}),
            2);
  EXPECT_EQ(ParseArgs(c, {"branch", "promote", "dev", "--restore-point-ttl", "soon"}), 2);
  EXPECT_EQ(ParseArgs(d, {"branch", "promote"}), 2);
}

TEST(CommandLineTest, UsageErrorsExitTwo) {
  for (std::initializer_list<const char*> bad : {
           std::initializer_list<const char*>{"endpoint", "create", "x", "--branch", "b",
                                              "--no-endpoint"},
           {"branch", "create", "x", "--bogus"},
           {"branch", "create", "x", "--parent", "main", "--lsn", "0/zz"},
           {"branch", "create", "x", "--ttl", "5x"},
           {"branch", "create", "x", "--ttl", "1h", "--no-expiry"},
           {"branch", "create", "x", "--ttl", "1h", "--expire-time", "2099-01-01T00:00:00Z"},
           {"branch", "create", "x", "--expire-time", "2001-01-01T00:00:00Z"},
           {"branch", "create", "x", "--lsn", "5"},
           {"branch", "create", "x", "--parent", "m", "--lsn", "5", "--at", "2026-01-01T00:00:00Z"},
           {"branch", "create", "x", "--parent", "m", "--at", "yesterday"},
           {"branch", "create"},
           {"branch", "update", "x"},
           {"branch", "update", "x", "--protected", "--no-protected"},
           {"endpoint", "create", "x", "--branch", "b", "--lsn", "0/1"},
           {"endpoint", "create", "x"},
           {"endpoint", "create", "x", "--branch", "b", "--type", "primary"},
           {"-o", "yaml", "branch", "list"},
           {"branch"},
           {"nope"},
           {"branch", "get", "a", "b"},
       }) {
    CommandLine cl;
    EXPECT_EQ(ParseArgs(cl, bad), 2) << *bad.begin() << " " << *(bad.begin() + 1);
  }
}

TEST(CommandLineTest, HelpAndVersionExitZero) {
  for (std::initializer_list<const char*> ok : {
           std::initializer_list<const char*>{"--help"},
           {"--version"},
           {"branch", "create", "--help"},
           {"endpoint", "create", "x", "--branch", "b", "--bogus", "--help"},
           {"help", "branch", "create"},
           {"help"},
       }) {
    CommandLine cl;
    EXPECT_EQ(ParseArgs(cl, ok), 0) << *ok.begin();
  }
}

TEST(CommandLineTest, GlobalFlagsAfterTheCommand) {
  CommandLine cl;
  EXPECT_EQ(ParseArgs(cl, {"branch", "get", "dev", "-o", "json", "--state-dir", "/tmp/x"}),
            std::nullopt);
  EXPECT_EQ(cl.Chosen(), "branch get");
}

TEST(CommandLineTest, KeepsTheFlagsScriptsUse) {
  for (std::initializer_list<const char*> ok : {
           std::initializer_list<const char*>{"local", "up", "--proxy-port", "0", "--test-clock"},
           {"local", "controller", "--pageserver", "127.0.0.1:1", "--test-clock", "--log-level",
            "debug"},
           {"debug", "advance-clock", "61m"},
           {"apply", "-f", "-"},
           {"branch", "create", "main", "--suspend-timeout", "0s"},
           {"branch", "create", "s", "--parent", "main", "--no-endpoint"},
           {"branch", "list", "--tree"},
           {"branch", "schema-diff", "dev", "--against", "main", "--exit-code"},
           {"endpoint", "suspend", "dev"},
           {"endpoint", "start", "dev"},
           {"branch", "update", "dev", "--no-protected", "--no-expiry"},
           {"connstr", "dev"},
       }) {
    CommandLine cl;
    EXPECT_EQ(ParseArgs(cl, ok), std::nullopt) << *ok.begin() << " " << *(ok.begin() + 1);
  }
}

}  // namespace
}  // namespace pgbranch::cli
