#include "pageserver/server/page_service.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace pgbranch::pageserver {
namespace {

constexpr int kMaxReadKeys = 16384;
constexpr uint32_t kMaxScanLimit = 10000;

const char* CodeName(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return "OK";
    case absl::StatusCode::kCancelled:
      return "CANCELLED";
    case absl::StatusCode::kUnknown:
      return "UNKNOWN";
    case absl::StatusCode::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case absl::StatusCode::kDeadlineExceeded:
      return "DEADLINE_EXCEEDED";
    case absl::StatusCode::kNotFound:
      return "NOT_FOUND";
    case absl::StatusCode::kAlreadyExists:
      return "ALREADY_EXISTS";
    case absl::StatusCode::kPermissionDenied:
      return "PERMISSION_DENIED";
    case absl::StatusCode::kResourceExhausted:
      return "RESOURCE_EXHAUSTED";
    case absl::StatusCode::kFailedPrecondition:
      return "FAILED_PRECONDITION";
    case absl::StatusCode::kAborted:
      return "ABORTED";
    case absl::StatusCode::kOutOfRange:
      return "OUT_OF_RANGE";
    case absl::StatusCode::kUnimplemented:
      return "UNIMPLEMENTED";
    case absl::StatusCode::kInternal:
      return "INTERNAL";
    case absl::StatusCode::kUnavailable:
      return "UNAVAILABLE";
    case absl::StatusCode::kDataLoss:
      return "DATA_LOSS";
    case absl::StatusCode::kUnauthenticated:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

absl::Status RequireId(const char* what, const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " is required"));
  return absl::OkStatus();
}

void ToWire(const storage::TimelineInfo& in, v1::Timeline* out) {
  out->set_tenant_id(in.tenant_id);
  out->set_timeline_id(in.timeline_id);
  out->set_ancestor_timeline_id(in.ancestor_id);
  out->set_ancestor_lsn(in.ancestor_lsn);
  out->set_head_lsn(in.head_lsn);
  out->set_oldest_readable_lsn(in.oldest_readable_lsn);
  out->set_logical_size(in.logical_size);
  out->set_diverged_bytes(in.diverged_bytes);
  out->set_writer_generation(in.generation);
  out->set_created_micros(in.created_micros);
  out->set_head_time_micros(in.head_time_micros);
  out->mutable_retention()->set_history_seconds(in.retention.history_seconds);
  out->mutable_retention()->set_history_bytes(in.retention.history_bytes);
  for (const auto& c : in.children) out->add_children(c);
  out->set_layer_files(in.layer_files);
}

void ToWire(const storage::TenantInfo& in, v1::Tenant* out) {
  out->set_tenant_id(in.tenant_id);
  out->set_root_timeline_id(in.root_timeline_id);
  out->set_created_micros(in.created_micros);
  out->set_timeline_count(in.timeline_count);
}

}  // namespace

absl::Status PageServiceImpl::Authorize(grpc::ServerContext* ctx, bool admin_only,
                                        const std::string& tenant, const std::string& timeline) {
  if (!auth_->enabled()) return absl::OkStatus();
  std::string header;
  auto it = ctx->client_metadata().find("authorization");
  if (it != ctx->client_metadata().end()) header.assign(it->second.data(), it->second.size());
  return auth_->Check(header, admin_only, tenant, timeline);
}

template <typename Fn>
grpc::Status PageServiceImpl::Handle(const char* method, grpc::ServerContext* ctx,
                                     const std::string& tenant, const std::string& timeline,
                                     Fn&& fn) {
  auto start = std::chrono::steady_clock::now();
  absl::Status s = fn();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics_->ObserveRequest(method, CodeName(s.code()), seconds);
  if (s.code() == absl::StatusCode::kInternal || s.code() == absl::StatusCode::kDataLoss ||
      s.code() == absl::StatusCode::kUnavailable) {
    // Log where the error is handled, with the identifiers a person needs.
    LogError(absl::StrCat(method, " failed"),
             {{"tenant", tenant}, {"timeline", timeline}, {"error", s.ToString()}});
  }
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

grpc::Status PageServiceImpl::HandleFn(const char* method, grpc::ServerContext* ctx,
                                       const std::string& tenant, const std::string& timeline,
                                       const std::function<absl::Status()>& fn) {
  return Handle(method, ctx, tenant, timeline, fn);
}

grpc::Status PageServiceImpl::CreateTenant(grpc::ServerContext* ctx,
                                           const v1::CreateTenantRequest* req, v1::Tenant* resp) {
  return Handle("CreateTenant", ctx, req->tenant_id(), "", [&]() -> absl::Status {
    PGB_RETURN_IF_ERROR(Authorize(ctx, true, req->tenant_id(), ""));
    PGB_ASSIGN_OR_RETURN(auto info,
                         engine_->CreateTenant(req->tenant_id(), req->root_timeline_id()));
    ToWire(info, resp);
    return absl::OkStatus();
  });
}

grpc::Status PageServiceImpl::ListTenants(grpc::ServerContext* ctx,
                                          const v1::ListTenantsRequest* req,
                                          v1::ListTenantsResponse* resp) {
  return Handle("ListTenants", ctx, "", "", [&]() -> absl::Status {
    PGB_RETURN_IF_ERROR(Authorize(ctx, true, "", ""));
    for (const auto& t : engine_->ListTenants()) ToWire(t, resp->add_tenants());
    return absl::OkStatus();
  });
}

grpc::Status PageServiceImpl::DeleteTenant(grpc::ServerContext* ctx,
                                           const v1::DeleteTenantRequest* req,
                                           v1::DeleteTenantResponse* resp) {
  return Handle("DeleteTenant", ctx, req->tenant_id(), "", [&]() -> absl::Status {
    PGB_RETURN_IF_ERROR(Authorize(ctx, true, req->tenant_id(), ""));
    PGB_RETURN_IF_ERROR(RequireId("tenant_id", req->tenant_id()));
    return engine_->DeleteTenant(req->tenant_id());
  });
}

grpc::Status PageServiceImpl::CreateTimeline(grpc::ServerContext* ctx,
                                             const v1::CreateTimelineRequest* req,
                                             v1::Timeline* resp) {
  return Handle("CreateTimeline", ctx, req->tenant_id(), req->timeline_id(), [&]() -> absl::Status {
    PGB_RETURN_IF_ERROR(Authorize(ctx, false, req->tenant_id(), req->timeline_id()));
    PGB_RETURN_IF_ERROR(RequireId("tenant_id", req->tenant_id()));
    storage::CreateTimelineOptions opts;
    opts.tenant_id = req->tenant_id();
    opts.timeline_id = req->timeline_id();
    opts.ancestor_id = req->ancestor_timeline_id();
    opts.ancestor_lsn = req->ancestor_lsn();
    if (req->ancestor_time_micros() != 0) {
      if (req->ancestor_lsn() != 0) {
        return absl::InvalidArgumentError("give either ancestor_lsn or ancestor_time, not both");
      }
      opts.at_micros = req->ancestor_time_micros();
    }
    if ((req->ancestor_lsn() != 0 || req->ancestor_time_micros() != 0) &&
        req->ancestor_timeline_id().empty()) {
      return absl::InvalidArgumentError("a branch point needs ancestor_timeline_id");
    }
    if (req->has_retention()) {
      opts.retention =
          storage::Retention{req->retention().history_seconds(), req->retention().history_bytes()};
    }
    PGB_ASSIGN_OR_RETURN(auto info, engine_->CreateTimeline(opts));
    ToWire(info, resp);
    return absl::OkStatus();
  });
}

grpc::Status PageServiceImpl::DeleteTimeline(grpc::ServerContext* ctx,
                                             const v1::DeleteTimelineRequest* req,
                                             v1::DeleteTimelineResponse* resp) {
  return Handle("DeleteTimeline", ctx, req->tenant_id(), req->timeline_id(), [&]() -> absl::Status {
    PGB_RETURN_IF_ERROR(Authorize(ctx, false, req->tenant_id(), req->timeline_id()));
    return engine_->DeleteTimeline(req->tenant_id(), req->timeline_id());
  });
}

grpc::Status PageServiceImpl::ListTimelines(grpc::ServerContext* ctx,
                                            const v1::ListTimelinesRequest* req,
                                            v1::ListTimelinesResponse* resp) {
  return Handle("ListTimelines", ctx, req->tenant_id(), "", [&]() -> absl::Status {
    PGB_RETURN_IF_ERROR(Authorize(ctx, false, req->tenant_id(), ""));
    PGB_ASSIGN_OR_RETURN(auto list, engine_->ListTimelines(req->tenant_id()));
    for (const auto& t : list) ToWire(t, resp->add_timelines());
    return absl::OkStatus();
  });
}

grpc::Status PageServiceImpl::GetTimeline(grpc::ServerContext* ctx,
                                          const v1::GetTimelineRequest* req, v1::Timeline* resp) {
  return Handle("GetTimeline", ctx, req->tenant_id(), req->timeline_id(), [&]() -> absl::Status {
    PGB_RETURN_IF_ERROR(Authorize(ctx, false, req->tenant_id(), req->timeline_id()));
    PGB_ASSIGN_OR_RETURN(auto info, engine_->GetTimeline(req->tenant_id(), req->timeline_id()));
    ToWire(info, resp);
    return absl::OkStatus();
  });
}

grpc::Status PageServiceImpl::Read(grpc::ServerContext* ctx, const v1::ReadRequest* req,
                                   v1::ReadResponse* resp) {
  return Handle("Read", ctx, req->tenant_id(), req->timeline_id(), [&]() -> absl::Status {
    PGB_RETURN_IF_ERROR(Authorize(ctx, false, req->tenant_id(), req->timeline_id()));
    if (req->keys_size() > kMaxReadKeys) {
      return absl::InvalidArgumentError(
          absl::StrCat("a read may ask for at most ", kMaxReadKeys, " keys; split the request"));
    }
    std::vector<std::string> keys(req->keys().begin(), req->keys().end());
    PGB_ASSIGN_OR_RETURN(auto result,
                         engine_->Read(req->tenant_id(), req->timeline_id(), req->lsn(), keys));
    resp->set_lsn(result.lsn);
    for (auto& v : result.values) {
      v1::Value* out = resp->add_values();
      out->set_found(v.found);
      *out->mutable_data() = std::move(v.data);
    }
    return absl::OkStatus();
  });
}

grpc::Status PageServiceImpl::Scan(grpc::ServerContext* ctx, const v1::ScanRequest* req,
                                   v1::ScanResponse* resp) {
  return Handle("Scan", ctx, req->tenant_id(), req->timeline_id(), [&]() -> absl::Status {
    PGB_RETURN_IF_ERROR(Authorize(ctx, false, req->tenant_id(), req->timeline_id()));
    if (req->limit() > kMaxScanLimit) {
      return absl::InvalidArgumentError(absl::StrCat("scan limit must be at most ", kMaxScanLimit));
    }
    if (!req->end().empty() && req->end() <= req->start()) {
      return absl::InvalidArgumentError("scan end must be after start (or empty)");
    }
    PGB_ASSIGN_OR_RETURN(
        auto result, engine_->Scan(req->tenant_id(), req->timeline_id(), req->lsn(), req->start(),
                                   req->end(), req->limit(), req->keys_only()));
    resp->set_lsn(result.lsn);
    resp->set_more(result.more);
    for (auto& e : result.entries) {
      v1::KeyValue* kv = resp->add_entries();
      *kv->mutable_key() = std::move(e.key);
      *kv->mutable_value() = std::move(e.value);
    }
    return absl::OkStatus();
  });
}

grpc::Status PageServiceImpl::Commit(grpc::ServerContext* ctx, const v1::CommitRequest* req,
                                     v1::CommitResponse* resp) {
  return Handle("Commit", ctx, req->tenant_id(), req->timeline_id(), [&]() -> absl::Status {
    PGB_RETURN_IF_ERROR(Authorize(ctx, false, req->tenant_id(), req->timeline_id()));
    std::vector<storage::Mutation> mutations;
    mutations.reserve(req->mutations_size());
    for (const auto& m : req->mutations()) mutations.push_back({m.key(), m.value(), m.tombstone()});
    PGB_ASSIGN_OR_RETURN(auto result, engine_->Commit(req->tenant_id(), req->timeline_id(),
                                                      req->generation(), std::move(mutations)));
    resp->set_lsn(result.lsn);
    resp->set_commit_time_micros(result.time_micros);
    return absl::OkStatus();
  });
}

grpc::Status PageServiceImpl::AcquireWriter(grpc::ServerContext* ctx,
                                            const v1::AcquireWriterRequest* req,
                                            v1::AcquireWriterResponse* resp) {
  return Handle("AcquireWriter", ctx, req->tenant_id(), req->timeline_id(), [&]() -> absl::Status {
    PGB_RETURN_IF_ERROR(Authorize(ctx, false, req->tenant_id(), req->timeline_id()));
    PGB_ASSIGN_OR_RETURN(uint64_t gen,
                         engine_->AcquireWriter(req->tenant_id(), req->timeline_id()));
    PGB_ASSIGN_OR_RETURN(auto info, engine_->GetTimeline(req->tenant_id(), req->timeline_id()));
    resp->set_generation(gen);
    resp->set_head_lsn(info.head_lsn);
    return absl::OkStatus();
  });
}

grpc::Status PageServiceImpl::LsnForTimestamp(grpc::ServerContext* ctx,
                                              const v1::LsnForTimestampRequest* req,
                                              v1::LsnForTimestampResponse* resp) {
  return Handle(
      "LsnForTimestamp", ctx, req->tenant_id(), req->timeline_id(), [&]() -> absl::Status {
        PGB_RETURN_IF_ERROR(Authorize(ctx, false, req->tenant_id(), req->timeline_id()));
        PGB_ASSIGN_OR_RETURN(
            uint64_t lsn,
            engine_->LsnForTimestamp(req->tenant_id(), req->timeline_id(), req->time_micros()));
        resp->set_lsn(lsn);
        return absl::OkStatus();
      });
}

grpc::Status PageServiceImpl::TimestampForLsn(grpc::ServerContext* ctx,
                                              const v1::TimestampForLsnRequest* req,
                                              v1::TimestampForLsnResponse* resp) {
  return Handle(
      "TimestampForLsn", ctx, req->tenant_id(), req->timeline_id(), [&]() -> absl::Status {
        PGB_RETURN_IF_ERROR(Authorize(ctx, false, req->tenant_id(), req->timeline_id()));
        PGB_ASSIGN_OR_RETURN(
            int64_t t, engine_->TimestampForLsn(req->tenant_id(), req->timeline_id(), req->lsn()));
        resp->set_time_micros(t);
        return absl::OkStatus();
      });
}

grpc::Status PageServiceImpl::ResetTimeline(grpc::ServerContext* ctx,
                                            const v1::ResetTimelineRequest* req,
                                            v1::ResetTimelineResponse* resp) {
  return Handle("ResetTimeline", ctx, req->tenant_id(), req->timeline_id(), [&]() -> absl::Status {
    PGB_RETURN_IF_ERROR(Authorize(ctx, false, req->tenant_id(), req->timeline_id()));
    PGB_ASSIGN_OR_RETURN(auto r,
                         req->rewind_lsn() != 0
                             ? engine_->RewindTimeline(req->tenant_id(), req->timeline_id(),
                                                       req->rewind_lsn(), req->backup_timeline_id())
                             : engine_->ResetTimeline(req->tenant_id(), req->timeline_id(),
                                                      req->backup_timeline_id()));
    resp->set_ancestor_lsn(r.ancestor_lsn);
    resp->set_backup_timeline_id(r.backup_timeline_id);
    resp->set_generation(r.generation);
    return absl::OkStatus();
  });
}

grpc::Status PageServiceImpl::SetRetention(grpc::ServerContext* ctx,
                                           const v1::SetRetentionRequest* req, v1::Timeline* resp) {
  return Handle("SetRetention", ctx, req->tenant_id(), req->timeline_id(), [&]() -> absl::Status {
    PGB_RETURN_IF_ERROR(Authorize(ctx, false, req->tenant_id(), req->timeline_id()));
    PGB_ASSIGN_OR_RETURN(auto info, engine_->SetRetention(req->tenant_id(), req->timeline_id(),
                                                          {req->retention().history_seconds(),
                                                           req->retention().history_bytes()}));
    ToWire(info, resp);
    return absl::OkStatus();
  });
}

grpc::Status PageServiceImpl::AddLease(grpc::ServerContext* ctx, const v1::AddLeaseRequest* req,
                                       v1::AddLeaseResponse* resp) {
  return Handle("AddLease", ctx, req->tenant_id(), req->timeline_id(), [&]() -> absl::Status {
    PGB_RETURN_IF_ERROR(Authorize(ctx, false, req->tenant_id(), req->timeline_id()));
    return engine_->AddLease(req->tenant_id(), req->timeline_id(), req->lsn(), req->ttl_seconds());
  });
}

grpc::Status PageServiceImpl::RunMaintenance(grpc::ServerContext* ctx,
                                             const v1::RunMaintenanceRequest* req,
                                             v1::RunMaintenanceResponse* resp) {
  return Handle("RunMaintenance", ctx, "", "", [&]() -> absl::Status {
    PGB_RETURN_IF_ERROR(Authorize(ctx, true, "", ""));
    return req->gc() ? engine_->RunGc() : engine_->Checkpoint();
  });
}

}  // namespace pgbranch::pageserver
