#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>

#include "pageserver/proto/pageserver.grpc.pb.h"
#include "pageserver/server/server_metrics.h"
#include "pageserver/server/token_auth.h"
#include "pageserver/storage/engine.h"

namespace pgbranch::pageserver {

namespace v1 = ::pgbranch::pageserver::v1;

// The gRPC front of the engine. Handlers are thin: authorise, convert and validate the wire
// message, call the engine, convert the result, map the status (absl codes equal gRPC codes).
class PageServiceImpl final : public v1::PageService::Service {
 public:
  PageServiceImpl(storage::Engine* engine, const TokenAuth* auth, ServerMetrics* metrics)
      : engine_(engine), auth_(auth), metrics_(metrics) {}

  grpc::Status CreateTenant(grpc::ServerContext* ctx, const v1::CreateTenantRequest* req,
                            v1::Tenant* resp) override;
  grpc::Status ListTenants(grpc::ServerContext* ctx, const v1::ListTenantsRequest* req,
                           v1::ListTenantsResponse* resp) override;
  grpc::Status DeleteTenant(grpc::ServerContext* ctx, const v1::DeleteTenantRequest* req,
                            v1::DeleteTenantResponse* resp) override;
  grpc::Status CreateTimeline(grpc::ServerContext* ctx, const v1::CreateTimelineRequest* req,
                              v1::Timeline* resp) override;
  grpc::Status DeleteTimeline(grpc::ServerContext* ctx, const v1::DeleteTimelineRequest* req,
                              v1::DeleteTimelineResponse* resp) override;
  grpc::Status ListTimelines(grpc::ServerContext* ctx, const v1::ListTimelinesRequest* req,
                             v1::ListTimelinesResponse* resp) override;
  grpc::Status GetTimeline(grpc::ServerContext* ctx, const v1::GetTimelineRequest* req,
                           v1::Timeline* resp) override;
  grpc::Status Read(grpc::ServerContext* ctx, const v1::ReadRequest* req,
                    v1::ReadResponse* resp) override;
  grpc::Status Scan(grpc::ServerContext* ctx, const v1::ScanRequest* req,
                    v1::ScanResponse* resp) override;
  grpc::Status Commit(grpc::ServerContext* ctx, const v1::CommitRequest* req,
                      v1::CommitResponse* resp) override;
  // Pipelined commits: the requests that queue while one round is made durable form the next
  // round, committed in order with one log write (Engine::CommitSequence).
  grpc::Status CommitStream(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<v1::CommitResponse, v1::CommitRequest>* stream) override;
  grpc::Status AcquireWriter(grpc::ServerContext* ctx, const v1::AcquireWriterRequest* req,
                             v1::AcquireWriterResponse* resp) override;
  grpc::Status LsnForTimestamp(grpc::ServerContext* ctx, const v1::LsnForTimestampRequest* req,
                               v1::LsnForTimestampResponse* resp) override;
  grpc::Status TimestampForLsn(grpc::ServerContext* ctx, const v1::TimestampForLsnRequest* req,
                               v1::TimestampForLsnResponse* resp) override;
  grpc::Status ResetTimeline(grpc::ServerContext* ctx, const v1::ResetTimelineRequest* req,
                             v1::ResetTimelineResponse* resp) override;
  grpc::Status SetRetention(grpc::ServerContext* ctx, const v1::SetRetentionRequest* req,
                            v1::Timeline* resp) override;
  grpc::Status AddLease(grpc::ServerContext* ctx, const v1::AddLeaseRequest* req,
                        v1::AddLeaseResponse* resp) override;
  grpc::Status RunMaintenance(grpc::ServerContext* ctx, const v1::RunMaintenanceRequest* req,
                              v1::RunMaintenanceResponse* resp) override;

 private:
  template <typename Fn>
  grpc::Status Handle(const char* method, grpc::ServerContext* ctx, const std::string& tenant,
                      const std::string& timeline, Fn&& fn);
  // Handle for callers in other files (the template lives in page_service.cc).
  grpc::Status HandleFn(const char* method, grpc::ServerContext* ctx, const std::string& tenant,
                        const std::string& timeline, const std::function<absl::Status()>& fn);
  absl::Status Authorize(grpc::ServerContext* ctx, bool admin_only, const std::string& tenant,
                         const std::string& timeline);

  storage::Engine* engine_;
  const TokenAuth* auth_;
  ServerMetrics* metrics_;
};

}  // namespace pgbranch::pageserver
