#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "pageserver/proto/pageserver.grpc.pb.h"

// pagectl's connection to one pageserver: a stub plus the per-call metadata (auth token) and
// deadline. Commands receive a Client, so tests can hand them one built around a fake stub.
namespace pgbranch::pagectl {

namespace v1 = ::pgbranch::pageserver::v1;

// A gRPC status as an absl::Status (the codes are the same).
absl::Status FromGrpc(const grpc::Status& status);

struct ClientOptions {
  std::string address;     // host:port
  std::string token;       // sent as `authorization: Bearer <token>` when not empty
  std::string tls_ca_pem;  // use TLS with this CA when not empty
  absl::Duration timeout = absl::Minutes(2);  // per call
};

class Client {
 public:
  // Creates the channel; it connects lazily, on the first call.
  static std::unique_ptr<Client> Connect(const ClientOptions& options);

  Client(std::unique_ptr<v1::PageService::StubInterface> stub, std::string token,
         absl::Duration timeout);

  // Calls `method` on the stub with a fresh context: `client.Call(&Stub::GetTimeline, req, &resp)`.
  template <typename Request, typename Response>
  absl::Status Call(grpc::Status (v1::PageService::StubInterface::*method)(grpc::ClientContext*,
                                                                           const Request&,
                                                                           Response*),
                    const Request& request, Response* response) const {
    std::unique_ptr<grpc::ClientContext> context = NewContext();
    return FromGrpc((stub_.get()->*method)(context.get(), request, response));
  }

  std::unique_ptr<grpc::ClientContext> NewContext() const;

 private:
  std::unique_ptr<v1::PageService::StubInterface> stub_;
  std::string token_;
  absl::Duration timeout_;
};

}  // namespace pgbranch::pagectl
