#include "operator/control/grpc_timeline_service.h"

namespace pgbranch::control {
namespace {

namespace v1 = ::pgbranch::pageserver::v1;
using Stub = v1::PageService::StubInterface;

TimelineInfo FromProto(const v1::Timeline& t) {
  TimelineInfo info;
  info.tenant_id = t.tenant_id();
  info.timeline_id = t.timeline_id();
  info.ancestor_timeline_id = t.ancestor_timeline_id();
  info.ancestor_lsn = t.ancestor_lsn();
  info.head_lsn = t.head_lsn();
  info.oldest_readable_lsn = t.oldest_readable_lsn();
  if (t.head_time_micros() != 0) info.head_time = absl::FromUnixMicros(t.head_time_micros());
  info.logical_size = t.logical_size();
  info.diverged_bytes = t.diverged_bytes();
  info.children.assign(t.children().begin(), t.children().end());
  return info;
}

}  // namespace

absl::Status GrpcTimelineService::EnsureTenant(const std::string& tenant_id) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (known_tenants_.count(tenant_id)) return absl::OkStatus();
  }
  v1::CreateTenantRequest req;
  req.set_tenant_id(tenant_id);
  req.set_root_timeline_id(kTenantRootTimeline);
  v1::Tenant resp;
  absl::Status s = client_->Call(&Stub::CreateTenant, req, &resp);
  if (!s.ok() && !absl::IsAlreadyExists(s)) return s;
  std::lock_guard<std::mutex> l(mu_);
  known_tenants_.insert(tenant_id);
  return absl::OkStatus();
}

absl::StatusOr<TimelineInfo> GrpcTimelineService::CreateTimeline(const std::string& tenant_id,
                                                                 const std::string& timeline_id,
                                                                 const std::string& ancestor_id,
                                                                 uint64_t lsn,
                                                                 std::optional<absl::Time> at) {
  v1::CreateTimelineRequest req;
  req.set_tenant_id(tenant_id);
  req.set_timeline_id(timeline_id);
  req.set_ancestor_timeline_id(ancestor_id);
  req.set_ancestor_lsn(lsn);
  if (at) req.set_ancestor_time_micros(absl::ToUnixMicros(*at));
  v1::Timeline resp;
  absl::Status s = client_->Call(&Stub::CreateTimeline, req, &resp);
  if (!s.ok()) return s;
  return FromProto(resp);
}

absl::StatusOr<TimelineInfo> GrpcTimelineService::GetTimeline(const std::string& tenant_id,
                                                              const std::string& timeline_id) {
  v1::GetTimelineRequest req;
  req.set_tenant_id(tenant_id);
  req.set_timeline_id(timeline_id);
  v1::Timeline resp;
  absl::Status s = client_->Call(&Stub::GetTimeline, req, &resp);
  if (!s.ok()) return s;
  return FromProto(resp);
}

absl::Status GrpcTimelineService::DeleteTimeline(const std::string& tenant_id,
                                                 const std::string& timeline_id) {
  v1::DeleteTimelineRequest req;
  req.set_tenant_id(tenant_id);
  req.set_timeline_id(timeline_id);
  v1::DeleteTimelineResponse resp;
  return client_->Call(&Stub::DeleteTimeline, req, &resp);
}

absl::StatusOr<uint64_t> GrpcTimelineService::ResetTimeline(const std::string& tenant_id,
                                                            const std::string& timeline_id) {
  v1::ResetTimelineRequest req;
  req.set_tenant_id(tenant_id);
  req.set_timeline_id(timeline_id);
  v1::ResetTimelineResponse resp;
  absl::Status s = client_->Call(&Stub::ResetTimeline, req, &resp);
  if (!s.ok()) return s;
  return resp.ancestor_lsn();
}

absl::Status GrpcTimelineService::RewindTimeline(const std::string& tenant_id,
                                                 const std::string& timeline_id, uint64_t lsn,
                                                 const std::string& backup_id) {
  if (lsn == 0) return absl::InvalidArgumentError("a rewind needs an LSN");
  v1::ResetTimelineRequest req;
  req.set_tenant_id(tenant_id);
  req.set_timeline_id(timeline_id);
  req.set_backup_timeline_id(backup_id);
  req.set_rewind_lsn(lsn);
  v1::ResetTimelineResponse resp;
  return client_->Call(&Stub::ResetTimeline, req, &resp);
}

absl::Status GrpcTimelineService::SetRetention(const std::string& tenant_id,
                                               const std::string& timeline_id,
                                               std::optional<absl::Duration> window,
                                               std::optional<uint64_t> bytes) {
  v1::SetRetentionRequest req;
  req.set_tenant_id(tenant_id);
  req.set_timeline_id(timeline_id);
  if (window) req.mutable_retention()->set_history_seconds(absl::ToInt64Seconds(*window));
  if (bytes) req.mutable_retention()->set_history_bytes(*bytes);
  v1::Timeline resp;
  return client_->Call(&Stub::SetRetention, req, &resp);
}

absl::StatusOr<uint64_t> GrpcTimelineService::LsnForTimestamp(const std::string& tenant_id,
                                                              const std::string& timeline_id,
                                                              absl::Time at) {
  v1::LsnForTimestampRequest req;
  req.set_tenant_id(tenant_id);
  req.set_timeline_id(timeline_id);
  req.set_time_micros(absl::ToUnixMicros(at));
  v1::LsnForTimestampResponse resp;
  absl::Status s = client_->Call(&Stub::LsnForTimestamp, req, &resp);
  if (!s.ok()) return s;
  return resp.lsn();
}

absl::StatusOr<absl::Time> GrpcTimelineService::TimestampForLsn(const std::string& tenant_id,
                                                                const std::string& timeline_id,
                                                                uint64_t lsn) {
  v1::TimestampForLsnRequest req;
  req.set_tenant_id(tenant_id);
  req.set_timeline_id(timeline_id);
  req.set_lsn(lsn);
  v1::TimestampForLsnResponse resp;
  absl::Status s = client_->Call(&Stub::TimestampForLsn, req, &resp);
  if (!s.ok()) return s;
  return absl::FromUnixMicros(resp.time_micros());
}

}  // namespace pgbranch::control
