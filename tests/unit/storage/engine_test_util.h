#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/log.h"
#include "gtest/gtest.h"
#include "pageserver/storage/engine.h"
#include "pageserver/storage/mem_env.h"

namespace pgbranch::storage {

// An engine on an in-memory filesystem with a fake clock, restartable across simulated crashes.
class EngineHarness {
 public:
  EngineHarness() {
    SetLogLevel(LogLevel::kWarning);
    Open();
  }

  void Open(bool checkpoint_on_close = false) {
    EngineOptions o;
    o.data_dir = "/data";
    o.env = &env_;
    o.clock = &clock_;
    o.background_maintenance = false;
    o.checkpoint_on_close = checkpoint_on_close;
    o.default_retention = retention_;
    o.max_layers_per_timeline = 3;
    o.log_prealloc_bytes = 64 << 10;
    auto e = Engine::Open(o);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = std::move(*e);
  }
  // Power loss: the engine dies, and whatever was not synced is gone.
  void Crash() {
    engine_.reset();
    env_.SimulateCrash();
    Open();
  }
  Engine* operator->() { return engine_.get(); }
  Engine& engine() { return *engine_; }
  MemEnv& env() { return env_; }
  FakeClock& clock() { return clock_; }
  void set_default_retention(Retention r) { retention_ = r; }

 private:
  MemEnv env_;
  FakeClock clock_;
  Retention retention_{3600, 0};
  std::unique_ptr<Engine> engine_;
};

inline std::vector<Mutation> Put(const std::string& key, const std::string& value) {
  return {Mutation{key, value, false}};
}
inline std::vector<Mutation> Del(const std::string& key) { return {Mutation{key, "", true}}; }

}  // namespace pgbranch::storage
