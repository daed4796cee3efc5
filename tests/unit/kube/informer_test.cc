#include "operator/kube/informer.h"

#include <mutex>
#include <vector>

#include "gtest/gtest.h"
#include "operator/kube/fake_kube_api.h"
#include "operator/kube/kube_object.h"
#include "tests/unit/kube/test_util.h"

namespace pgbranch::kube {
namespace {

using testing::Branch;
using testing::Eventually;

class InformerTest : public ::testing::Test {
 protected:
  Informer::Handlers Recording() {
    Informer::Handlers h;
    h.on_add = [this](const web::json::value& o) { Log("add " + NameOf(o)); };
    h.on_update = [this](const web::json::value&, const web::json::value& o) {
      Log("update " + NameOf(o));
    };
    h.on_delete = [this](const web::json::value& o) { Log("delete " + NameOf(o)); };
    return h;
  }
  Informer::Options Fast() {
    Informer::Options o;
    o.page_size = 2;
    o.initial_backoff = absl::Milliseconds(5);
    o.max_backoff = absl::Milliseconds(20);
    return o;
  }
  void Log(const std::string& s) {
    std::lock_guard<std::mutex> lock(mu_);
    log_.push_back(s);
  }
  bool Saw(const std::string& s) {
    std::lock_guard<std::mutex> lock(mu_);
    return std::find(log_.begin(), log_.end(), s) != log_.end();
  }
  int Count(const std::string& s) {
    std::lock_guard<std::mutex> lock(mu_);
    return std::count(log_.begin(), log_.end(), s);
  }

  FakeKubeApi api_;
  std::mutex mu_;
  std::vector<std::string> log_;
};

TEST_F(InformerTest, SyncsThenFollowsAddUpdateDelete) {
  for (const char* n : {"a", "b", "c"})
    ASSERT_TRUE(api_.Create(kBranches, "ns", Branch("ns", n)).ok());
  Informer inf(&api_, kBranches, "ns", Recording(), Fast());
  inf.Start();
  ASSERT_TRUE(inf.WaitForSync(absl::Seconds(5)));
  EXPECT_EQ(inf.Keys(), (std::vector<std::string>{"ns/a", "ns/b", "ns/c"}));
  EXPECT_TRUE(Saw("add a") && Saw("add c"));

  ASSERT_TRUE(api_.Create(kBranches, "ns", Branch("ns", "d")).ok());
  ASSERT_TRUE(api_.Patch(kBranches, "ns", "a", PatchType::kMerge,
                         testing::Obj(R"({"spec":{"parent":"x"}})"))
                  .ok());
  ASSERT_TRUE(api_.Delete(kBranches, "ns", "b").ok());
  ASSERT_TRUE(Eventually([&] { return Saw("add d") && Saw("update a") && Saw("delete b"); }));
  EXPECT_FALSE(inf.Get("ns/b").has_value());
  EXPECT_EQ(inf.Get("ns/a")->at("spec").at("parent").as_string(), "x");
  inf.Stop();
}

TEST_F(InformerTest, DroppedWatchResumesWithoutLosingEvents) {
  ASSERT_TRUE(api_.Create(kBranches, "ns", Branch("ns", "a")).ok());
  Informer inf(&api_, kBranches, "ns", Recording(), Fast());
  inf.Start();
  ASSERT_TRUE(inf.WaitForSync(absl::Seconds(5)));
  ASSERT_TRUE(Eventually([&] { return api_.OpenWatches() == 1; }));
  // The watch fails to restart twice (503), and objects change while it is down.
  api_.FailNext(FakeKubeApi::Verb::kWatch, 2, absl::UnavailableError("503"));
  api_.DropWatches();
  ASSERT_TRUE(api_.Create(kBranches, "ns", Branch("ns", "b")).ok());
  ASSERT_TRUE(api_.Delete(kBranches, "ns", "a").ok());
  ASSERT_TRUE(Eventually([&] { return Saw("add b") && Saw("delete a"); }));
  EXPECT_EQ(inf.ListCount(), 1);  // resumed from its resourceVersion, no relist
  EXPECT_EQ(inf.Keys(), (std::vector<std::string>{"ns/b"}));
  inf.Stop();
}

TEST_F(InformerTest, GoneRelistsAndDeletesWhatVanished) {
  for (const char* n : {"a", "b"}) ASSERT_TRUE(api_.Create(kBranches, "ns", Branch("ns", n)).ok());
  Informer inf(&api_, kBranches, "ns", Recording(), Fast());
  inf.Start();
  ASSERT_TRUE(inf.WaitForSync(absl::Seconds(5)));
  ASSERT_TRUE(Eventually([&] { return api_.OpenWatches() == 1; }));
  // Away: the watch drops and cannot start, history is compacted meanwhile.
  api_.FailNext(FakeKubeApi::Verb::kWatch, 1, absl::UnavailableError("503"));
  api_.FailNext(FakeKubeApi::Verb::kWatch, 1, absl::UnavailableError("503"));
  api_.DropWatches();
  ASSERT_TRUE(api_.Delete(kBranches, "ns", "a").ok());
  ASSERT_TRUE(api_.Create(kBranches, "ns", Branch("ns", "c")).ok());
  api_.Compact();
  // Either the ERROR 410 event or the event replay path; both must end in a relist.
  ASSERT_TRUE(Eventually([&] { return Saw("delete a") && Saw("add c"); }));
  EXPECT_EQ(inf.Keys(), (std::vector<std::string>{"ns/b", "ns/c"}));
  EXPECT_EQ(Count("delete a"), 1);
  inf.Stop();
}

TEST_F(InformerTest, WatchStartGoneRelists) {
  ASSERT_TRUE(api_.Create(kBranches, "ns", Branch("ns", "a")).ok());
  Informer inf(&api_, kBranches, "ns", Recording(), Fast());
  inf.Start();
  ASSERT_TRUE(inf.WaitForSync(absl::Seconds(5)));
  ASSERT_TRUE(Eventually([&] { return api_.OpenWatches() == 1; }));
  api_.FailNext(FakeKubeApi::Verb::kWatch, 1, absl::OutOfRangeError("410 Gone"));
  api_.DropWatches();
  ASSERT_TRUE(Eventually([&] { return inf.ListCount() == 2; }));
  ASSERT_TRUE(api_.Create(kBranches, "ns", Branch("ns", "z")).ok());
  ASSERT_TRUE(Eventually([&] { return Saw("add z"); }));
  inf.Stop();
}

TEST_F(InformerTest, BookmarksAdvanceTheResourceVersion) {
  Informer inf(&api_, kBranches, "ns", Recording(), Fast());
  inf.Start();
  ASSERT_TRUE(inf.WaitForSync(absl::Seconds(5)));
  ASSERT_TRUE(Eventually([&] { return api_.OpenWatches() == 1; }));
  ASSERT_TRUE(api_.Create(kPods, "ns", testing::Obj(R"({"metadata":{"name":"p"}})")).ok());
  api_.SendBookmarks();
  std::string want = std::to_string(api_.CurrentResourceVersion());
  ASSERT_TRUE(Eventually([&] { return inf.LastResourceVersion() == want; }));
  inf.Stop();
}

TEST_F(InformerTest, PeriodicResync) {
  ASSERT_TRUE(api_.Create(kBranches, "ns", Branch("ns", "a")).ok());
  auto opts = Fast();
  opts.resync_period = absl::Milliseconds(20);
  Informer inf(&api_, kBranches, "ns", Recording(), opts);
  inf.Start();
  ASSERT_TRUE(Eventually([&] { return Count("update a") >= 2; }));
  inf.Stop();
}

}  // namespace
}  // namespace pgbranch::kube
