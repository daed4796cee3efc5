#pragma once

#include <gtest/gtest.h>

#include "common/clock.h"
#include "operator/control/branch_reconciler.h"
#include "operator/control/endpoint_reconciler.h"
#include "operator/local/local_store.h"
#include "operator/model/manifest.h"
#include "tests/unit/control/control_fakes.h"

namespace pgbranch::control::testing {

// The reconcile core over the local store (in memory), fake pageserver, fake computes and a
// fake clock.
class ReconcilerFixture : public ::testing::Test {
 protected:
  ReconcilerFixture() : store_("", &clock_) {
    ReconcileContext ctx;
    ctx.store = &store_;
    ctx.timelines = &timelines_;
    ctx.computes = &computes_;
    ctx.activity = &activity_;
    ctx.clock = &clock_;
    branches_ = std::make_unique<BranchReconciler>(ctx);
    endpoints_ = std::make_unique<EndpointReconciler>(ctx);
  }

  // Without local mode's rules between objects: the reconcilers must hold every rule on their
  // own, as in Kubernetes, where nothing checks them before the object is stored.
  void Apply(const std::string& yaml) {
    auto rs = ParseManifests(yaml);
    ASSERT_TRUE(rs.ok()) << rs.status();
    cli::LocalStore::ApplyOptions unchecked;
    unchecked.cross_object_checks = false;
    auto stored = store_.Apply(*rs, unchecked);
    ASSERT_TRUE(stored.ok()) << stored.status();
  }
  void ApplyBranch(const std::string& name, const std::string& spec) {
    Apply("apiVersion: pgbranch.io/v1alpha1\nkind: Branch\nmetadata: {name: " + name +
          "}\nspec: " + spec + "\n");
  }
  void ApplyEndpoint(const std::string& name, const std::string& spec) {
    Apply("apiVersion: pgbranch.io/v1alpha1\nkind: Endpoint\nmetadata: {name: " + name +
          "}\nspec: " + spec + "\n");
  }
  ReconcileResult ReconcileBranch(const std::string& name) {
    auto r = branches_->Reconcile("default", name);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : ReconcileResult{};
  }
  ReconcileResult ReconcileEndpoint(const std::string& name) {
    auto r = endpoints_->Reconcile("default", name);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : ReconcileResult{};
  }
  Branch GetBranch(const std::string& name) { return *store_.GetBranch("default", name); }
  Endpoint GetEndpoint(const std::string& name) { return *store_.GetEndpoint("default", name); }
  absl::Time Now() { return absl::FromUnixMicros(clock_.NowMicros()); }
  void Advance(absl::Duration d) { clock_.Advance(absl::ToInt64Microseconds(d)); }

  FakeClock clock_;
  cli::LocalStore store_;
  FakeTimelineService timelines_;
  FakeComputeRuntime computes_;
  ActivityTracker activity_;
  std::unique_ptr<BranchReconciler> branches_;
  std::unique_ptr<EndpointReconciler> endpoints_;
};

}  // namespace pgbranch::control::testing
