#pragma once

#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "operator/control/timeline_service.h"
#include "pageserver/pagectl/client.h"

// TimelineService over the pageserver's gRPC API. Thread-safe.
namespace pgbranch::control {

class GrpcTimelineService : public TimelineService {
 public:
  explicit GrpcTimelineService(std::unique_ptr<pagectl::Client> client)
      : client_(std::move(client)) {}

  absl::Status EnsureTenant(const std::string& tenant_id) override;
  absl::StatusOr<TimelineInfo> CreateTimeline(const std::string& tenant_id,
                                              const std::string& timeline_id,
                                              const std::string& ancestor_id, uint64_t lsn,
                                              std::optional<absl::Time> at) override;
  absl::StatusOr<TimelineInfo> GetTimeline(const std::string& tenant_id,
                                           const std::string& timeline_id) override;
  absl::Status DeleteTimeline(const std::string& tenant_id,
                              const std::string& timeline_id) override;
  absl::Status RewindTimeline(const std::string& tenant_id, const std::string& timeline_id,
                              uint64_t lsn, const std::string& backup_id) override;
  absl::StatusOr<uint64_t> ResetTimeline(const std::string& tenant_id,
                                         const std::string& timeline_id) override;
  absl::Status SetRetention(const std::string& tenant_id, const std::string& timeline_id,
                            std::optional<absl::Duration> window,
                            std::optional<uint64_t> bytes) override;
  absl::StatusOr<uint64_t> LsnForTimestamp(const std::string& tenant_id,
                                           const std::string& timeline_id, absl::Time at) override;
  absl::StatusOr<absl::Time> TimestampForLsn(const std::string& tenant_id,
                                             const std::string& timeline_id, uint64_t lsn) override;

  // The root timeline a tenant is created with. Not a valid branch name (it has a '.'), so no
  // branch ever collides with it.
  static constexpr char kTenantRootTimeline[] = "tenant.root";

 private:
  std::unique_ptr<pagectl::Client> client_;
  std::mutex mu_;
  std::set<std::string> known_tenants_;  // GUARDED_BY(mu_)
};

}  // namespace pgbranch::control
