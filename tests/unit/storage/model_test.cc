// Model test: thousands of random steps (commits, branches at random LSNs and times, deletes,
// resets, GC, checkpoints/compaction, crashes) applied to the engine and to a tiny in-memory
// reference model, checked by reading random keys at random (timeline, LSN) pairs and by scans.
// Fixed seeds; PGBRANCH_MODEL_STEPS and PGBRANCH_MODEL_SEEDS make a longer run.
#include <cstdlib>
#include <map>
#include <optional>
#include <random>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/unit/storage/engine_test_util.h"

namespace pgbranch::storage {
namespace {

constexpr int64_t kWindowSeconds = 50;

struct ModelTimeline {
  std::string parent;  // empty for the root
  uint64_t branch_lsn = 0;
  uint64_t head = 0;
  // Committed batches by LSN; a nullopt value is a deletion.
  std::map<uint64_t, std::map<std::string, std::optional<std::string>>> batches;
  std::vector<std::pair<uint64_t, int64_t>> times;  // (lsn, commit time), starting point first
  uint64_t generation = 0;
};

class Model {
 public:
  std::map<std::string, ModelTimeline> tls;

  std::optional<std::string> Get(std::string tl, uint64_t lsn, const std::string& key) const {
    while (true) {
      const ModelTimeline& t = tls.at(tl);
      for (auto it = t.batches.upper_bound(lsn); it != t.batches.begin();) {
        --it;
        auto kv = it->second.find(key);
        if (kv != it->second.end()) return kv->second;
      }
      if (t.parent.empty()) return std::nullopt;
      lsn = std::min(lsn, t.branch_lsn);
      tl = t.parent;
    }
  }
  std::vector<std::string> Children(const std::string& id) const {
    std::vector<std::string> out;
    for (const auto& [cid, t] : tls) {
      if (t.parent == id) out.push_back(cid);
    }
    return out;
  }
};

class ModelTest : public ::testing::TestWithParam<uint32_t> {};

int EnvInt(const char* name, int def) {
  const char* v = getenv(name);
  return v != nullptr ? atoi(v) : def;
}

void RunModel(uint32_t seed, int steps) {
  std::mt19937 rng(seed);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint32_t>(n)); };
  EngineHarness h;
  h.set_default_retention({kWindowSeconds, 0});
  h.Crash();  // reopen with the retention above
  Model model;
  ASSERT_TRUE(h->CreateTenant("t", "root").ok());
  model.tls["root"].times.push_back({0, h.clock().NowMicros()});
  int next_id = 0;
  std::vector<std::string> keys;
  for (int i = 0; i < 24; ++i) keys.push_back(absl::StrCat("key/", i % 7, "/", i));

  auto random_tl = [&]() {
    auto it = model.tls.begin();
    std::advance(it, pick(static_cast<int>(model.tls.size())));
    return it->first;
  };
  auto cutoff = [&](const std::string& id) {
    auto info = h->GetTimeline("t", id);
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? info->oldest_readable_lsn : 0;
  };
  auto check_read = [&](const std::string& id, uint64_t lsn, const std::string& key) {
    auto r = h->Read("t", id, lsn, {key});
    ASSERT_TRUE(r.ok()) << "seed " << seed << " read " << id << "@" << lsn << ": " << r.status();
    auto want = model.Get(id, lsn, key);
    ASSERT_EQ(r->values[0].found, want.has_value())
        << "seed " << seed << " " << id << "@" << lsn << " " << key;
    if (want) {
      ASSERT_EQ(r->values[0].data, *want) << "seed " << seed << " " << id << "@" << lsn;
    }
  };

  for (int step = 0; step < steps; ++step) {
    int op = pick(100);
    std::string id = random_tl();
    ModelTimeline& t = model.tls[id];
    if (op < 45) {  // commit
      if (t.generation == 0 || pick(20) == 0) {
        auto g = h->AcquireWriter("t", id);
        ASSERT_TRUE(g.ok());
        if (t.generation != 0) {
          // The previous generation is fenced now.
          auto stale = h->Commit("t", id, t.generation, Put("k", "v"));
          ASSERT_EQ(stale.status().code(), absl::StatusCode::kFailedPrecondition);
        }
        t.generation = *g;
      }
      std::vector<Mutation> batch;
      std::map<std::string, std::optional<std::string>> applied;
      int n = 1 + pick(5);
      for (int i = 0; i < n; ++i) {
        std::string key = keys[pick(static_cast<int>(keys.size()))];
        if (pick(6) == 0) {
          batch.push_back({key, "", true});
          applied[key] = std::nullopt;
        } else {
          std::string value(pick(3) == 0 ? pick(3000) : pick(40), 'a' + pick(26));
          if (!value.empty()) value[0] = static_cast<char>('0' + step % 10);
          batch.push_back({key, value, false});
          applied[key] = value;
        }
      }
      h.clock().Advance(1'000'000 + pick(2'000'000));
      auto r = h->Commit("t", id, t.generation, batch);
      ASSERT_TRUE(r.ok()) << r.status();
      ASSERT_EQ(r->lsn, t.head + 1);
      t.head = r->lsn;
      t.batches[r->lsn] = applied;
      t.times.push_back({r->lsn, r->time_micros});
    } else if (op < 55 && model.tls.size() < 12) {  // branch at a random LSN or time
      uint64_t lo = cutoff(id);
      std::string child = absl::StrCat("b", next_id++);
      CreateTimelineOptions o;
      o.tenant_id = "t";
      o.timeline_id = child;
      o.ancestor_id = id;
      uint64_t lsn;
      if (pick(3) == 0) {
        // As of a time: the newest commit at or before it.
        int64_t lo_time = 0;
        for (auto& [l, tm] : t.times) {
          if (l == lo) lo_time = tm;
        }
        int64_t at =
            lo_time + pick(static_cast<int>(std::max<int64_t>(1, h.clock().NowMicros() - lo_time)));
        o.at_micros = at;
        lsn = lo;
        for (auto& [l, tm] : t.times) {
          if (tm <= at && l >= lo) lsn = std::max(lsn, l);
        }
      } else {
        lsn = lo + pick(static_cast<int>(t.head - lo + 1));
        o.ancestor_lsn = lsn;
        if (lsn == 0) lsn = t.head;
      }
      auto r = h->CreateTimeline(o);
      ASSERT_TRUE(r.ok()) << "seed " << seed << ": " << r.status();
      ASSERT_EQ(r->ancestor_lsn, lsn) << "seed " << seed;
      ModelTimeline& c = model.tls[child];
      c.parent = id;
      c.branch_lsn = lsn;
      c.head = lsn;
      c.times.push_back({lsn, h.clock().NowMicros()});
    } else if (op < 60) {  // delete a leaf
      if (id == "root") continue;
      absl::Status s = h->DeleteTimeline("t", id);
      if (!model.Children(id).empty()) {
        ASSERT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
        continue;
      }
      ASSERT_TRUE(s.ok()) << s;
      model.tls.erase(id);
      ASSERT_EQ(h->Read("t", id, 0, {"k"}).status().code(), absl::StatusCode::kNotFound);
    } else if (op < 64) {  // reset to the parent's head
      if (t.parent.empty()) continue;
      bool backup = pick(2) == 0 || !model.Children(id).empty();
      std::string backup_id = backup ? absl::StrCat("b", next_id++) : "";
      auto r = h->ResetTimeline("t", id, backup_id);
      ASSERT_TRUE(r.ok()) << r.status();
      if (backup) {
        ModelTimeline old = t;
        old.generation = 0;
        model.tls[backup_id] = old;
        for (auto& [cid, c] : model.tls) {
          if (c.parent == id) c.parent = backup_id;
        }
      }
      ModelTimeline& tt = model.tls[id];
      tt.branch_lsn = model.tls[tt.parent].head;
      tt.head = tt.branch_lsn;
      tt.batches.clear();
      tt.times = {{tt.head, h.clock().NowMicros()}};
      tt.generation = 0;
    } else if (op < 67) {  // GC
      ASSERT_TRUE(h->RunGc().ok());
      // GC keeps at least the retention window.
      int64_t horizon = h.clock().NowMicros() - kWindowSeconds * 1'000'000;
      for (auto& [tid, tt] : model.tls) {
        uint64_t bound = tt.times.front().first;
        for (auto& [l, tm] : tt.times) {
          if (tm <= horizon) bound = l;
        }
        ASSERT_LE(cutoff(tid), std::max(bound, tt.times.front().first)) << tid;
      }
    } else if (op < 70) {
      ASSERT_TRUE(h->Checkpoint().ok());
    } else if (op < 73) {
      h.Crash();
    } else if (op < 78) {  // scan a whole timeline at some LSN
      uint64_t lo = cutoff(id);
      uint64_t lsn = lo + pick(static_cast<int>(t.head - lo + 1));
      if (lsn == 0) lsn = t.head;
      auto r = h->Scan("t", id, lsn, "key/", "key0", 5 + pick(20));
      ASSERT_TRUE(r.ok()) << r.status();
      std::vector<std::string> want;
      for (const auto& k : keys) {
        if (model.Get(id, lsn, k)) want.push_back(k);
      }
      std::sort(want.begin(), want.end());
      for (size_t i = 0; i < r->entries.size(); ++i) {
        ASSERT_LT(i, want.size());
        ASSERT_EQ(r->entries[i].key, want[i]) << "seed " << seed;
        ASSERT_EQ(r->entries[i].value, *model.Get(id, lsn, want[i]));
      }
      ASSERT_EQ(r->more, r->entries.size() < want.size()) << "seed " << seed;
    } else {  // random reads
      uint64_t lo = cutoff(id);
      for (int i = 0; i < 5; ++i) {
        uint64_t lsn = lo + pick(static_cast<int>(t.head - lo + 1));
        if (lsn == 0) continue;
        check_read(id, lsn, keys[pick(static_cast<int>(keys.size()))]);
        if (::testing::Test::HasFatalFailure()) return;
      }
      if (lo > 1 && lo > t.branch_lsn) {  // (LSN 0 would mean "the head")
        auto below = h->Read("t", id, lo - 1, {"k"});
        ASSERT_EQ(below.status().code(), absl::StatusCode::kOutOfRange)
            << "seed " << seed << " " << id << " cutoff " << lo << " head " << t.head;
      }
    }
    if (::testing::Test::HasFatalFailure()) return;
  }
  // Final sweep: every key at every readable LSN of every timeline, after one more crash.
  h.Crash();
  for (auto& [id, t] : model.tls) {
    uint64_t lo = std::max<uint64_t>(cutoff(id), 1);
    for (uint64_t lsn = lo; lsn <= t.head; ++lsn) {
      for (const auto& k : keys) {
        check_read(id, lsn, k);
        if (::testing::Test::HasFatalFailure()) return;
      }
    }
  }
}

TEST_P(ModelTest, MatchesReferenceModel) {
  RunModel(GetParam(), EnvInt("PGBRANCH_MODEL_STEPS", 3000));
}

INSTANTIATE_TEST_SUITE_P(
    Seeds, ModelTest,
    ::testing::Range(static_cast<uint32_t>(EnvInt("PGBRANCH_MODEL_FIRST_SEED", 1)),
                     static_cast<uint32_t>(EnvInt("PGBRANCH_MODEL_FIRST_SEED", 1) +
                                           EnvInt("PGBRANCH_MODEL_SEEDS", 8))));

}  // namespace
}  // namespace pgbranch::storage
