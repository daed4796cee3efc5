#include "operator/model/manifest.h"

#include "gtest/gtest.h"
#include "operator/model/duration.h"
#include "operator/model/field_error.h"

namespace pgbranch::control {
namespace {

std::string Error(const std::string& yaml) {
  auto r = ParseManifests(yaml);
  return r.ok() ? "<ok>" : std::string(r.status().message());
}

TEST(DurationTest, ParsesAndFormatsKubernetesStyleDurations) {
  EXPECT_EQ(*ParseDuration("1h30m"), absl::Minutes(90));
  EXPECT_EQ(*ParseDuration("7d"), absl::Hours(168));
  EXPECT_EQ(*ParseDuration("250ms"), absl::Milliseconds(250));
  EXPECT_EQ(*ParseDuration("1.5h"), absl::Minutes(90));
  EXPECT_EQ(*ParseDuration("0s"), absl::ZeroDuration());
  EXPECT_FALSE(ParseDuration("").ok());
  EXPECT_FALSE(ParseDuration("10").ok());
  EXPECT_FALSE(ParseDuration("5 minutes").ok());
  EXPECT_FALSE(ParseDuration("-5m").ok());
  EXPECT_EQ(DurationToString(absl::Minutes(90)), "1h30m");
  EXPECT_EQ(DurationToString(absl::ZeroDuration()), "0s");
}

TEST(ManifestTest, ParsesBranchesAndEndpoints) {
  auto r = ParseManifests(R"(
apiVersion: pgbranch.io/v1alpha1
kind: Branch
metadata: {name: main}
spec: {noExpiry: true, protected: true}
---
apiVersion: pgbranch.io/v1alpha1
kind: Branch
metadata: {name: pr-42, labels: {ci: "true"}}
spec:
  parent: main
  timestamp: "2026-11-21T10:42:00Z"
  ttl: 1h
---
apiVersion: pgbranch.io/v1alpha1
kind: Endpoint
metadata: {name: pr-42-rw}
spec:
  branch: pr-42
  suspendTimeout: 30s
  postgresParameters: {work_mem: 8MB}
)");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 3u);
  const Branch& main = std::get<Branch>((*r)[0]);
  EXPECT_TRUE(main.spec.protected_);
  EXPECT_TRUE(main.spec.parent.empty());
  const Branch& pr = std::get<Branch>((*r)[1]);
  EXPECT_EQ(pr.spec.parent, "main");
  EXPECT_EQ(*pr.spec.ttl, absl::Hours(1));
  EXPECT_EQ(absl::ToUnixSeconds(*pr.spec.timestamp), 1795257720);
  EXPECT_EQ(pr.metadata.labels.at("ci"), "true");
  const Endpoint& ep = std::get<Endpoint>((*r)[2]);
  EXPECT_EQ(ep.spec.branch, "pr-42");
  EXPECT_EQ(ep.spec.type, EndpointType::kReadWrite);
  EXPECT_EQ(ep.spec.suspend_timeout, absl::Seconds(30));
  EXPECT_EQ(ep.spec.postgres_parameters.at("work_mem"), "8MB");
}

TEST(ManifestTest, RejectsBadSpecsWithReadableMessages) {
  const std::string head =
      "apiVersion: pgbranch.io/v1alpha1\nkind: Branch\nmetadata: {name: dev}\n";
  EXPECT_NE(Error(head + "spec: {parent: main}")
                .find("Branch \"dev\": spec: give exactly one of ttl, expireTime and noExpiry"),
            std::string::npos);
  EXPECT_NE(Error(head + "spec: {parent: main, ttl: 1h, noExpiry: true}").find("exactly one"),
            std::string::npos);
  EXPECT_NE(
      Error(head + "spec: {parent: main, ttl: soon}").find("spec.ttl: 'soon' is not a duration"),
      std::string::npos);
  EXPECT_NE(Error(head + "spec: {lsn: 5, noExpiry: true}").find("needs spec.parent"),
            std::string::npos);
  EXPECT_NE(Error(head + "spec: {parent: main, ttl: 1h, protected: true}").find("cannot expire"),
            std::string::npos);
  EXPECT_NE(
      Error(head + "spec: {parent: main, noExpiry: true, tll: 1h}").find("spec.tll: unknown field"),
      std::string::npos);
  EXPECT_NE(Error("apiVersion: pgbranch.io/v1alpha1\nkind: Branch\nmetadata: {name: Dev_1}\n"
                  "spec: {noExpiry: true}")
                .find("not a valid name"),
            std::string::npos);
  EXPECT_NE(Error("apiVersion: v1\nkind: Branch\nmetadata: {name: dev}\nspec: {noExpiry: true}")
                .find("apiVersion must be pgbranch.io/v1alpha1"),
            std::string::npos);
  EXPECT_NE(Error("apiVersion: pgbranch.io/v1alpha1\nkind: Endpoint\nmetadata: {name: e}\n"
                  "spec: {branch: dev, lsn: 7}")
                .find("set type: ReadOnly"),
            std::string::npos);
  EXPECT_NE(Error("apiVersion: pgbranch.io/v1alpha1\nkind: Endpoint\nmetadata: {name: e}\n"
                  "spec: {type: Sometimes, branch: dev}")
                .find("not ReadWrite or ReadOnly"),
            std::string::npos);
  EXPECT_NE(Error("key: [unclosed").find("not valid YAML"), std::string::npos);
}

// The API replies with an error's field and detail separately (the CLI names its own flag).
TEST(ManifestTest, ErrorsCarryTheFieldAndTheDetail) {
  auto r = ParseManifests(
      "apiVersion: pgbranch.io/v1alpha1\nkind: Branch\nmetadata: {name: dev}\n"
      "spec: {parent: main, ttl: 1h, noExpiry: true, lsn: -3}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(ErrorField(r.status()), "spec.lsn");
  EXPECT_EQ(
      ErrorDetail(r.status()).rfind("must be a non-negative integer; spec: give exactly one", 0),
      0u)
      << ErrorDetail(r.status());
  EXPECT_EQ(std::string(r.status().message()).rfind("Branch \"dev\": spec.lsn: must be", 0), 0u);
  EXPECT_EQ(ErrorReason(r.status()), "Invalid");
  auto kind = ParseManifests("apiVersion: pgbranch.io/v1alpha1\nkind: Brunch\nmetadata: {name: x}");
  EXPECT_EQ(ErrorField(kind.status()), "kind");
}

}  // namespace
}  // namespace pgbranch::control
