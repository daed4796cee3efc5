#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "absl/time/time.h"

// What the proxy knows about client activity, per endpoint key ("namespace/name"): open client
// connections (reported by the proxy) and the last time a connection asked for a wake.
// Thread-safe.
namespace pgbranch::control {

class ActivityTracker {
 public:
  struct Activity {
    int connections = 0;
    std::optional<absl::Time> last_wake;
    std::optional<absl::Time> last_connected;  // last report with connections > 0
  };

  void RecordWake(const std::string& key, absl::Time now);
  // Replaces every count with the proxy's report (endpoints not named have none open).
  void SetConnections(const std::map<std::string, int>& counts, absl::Time now);
  // A proxy that stopped reporting has no connections left (they went with it).
  void ExpireReports(absl::Time now, absl::Duration stale_after);
  Activity Get(const std::string& key) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, Activity> by_key_;         // GUARDED_BY(mu_)
  absl::Time last_report_ = absl::InfinitePast();  // GUARDED_BY(mu_)
};

}  // namespace pgbranch::control
