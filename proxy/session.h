#pragma once

#include <mutex>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/scram.h"
#include "proxy/cancel_key_map.h"
#include "proxy/connection_registry.h"
#include "proxy/control_client.h"
#include "proxy/epoll_relay.h"
#include "proxy/pg_protocol.h"
#include "proxy/proxy_metrics.h"
#include "proxy/sockmap_relay.h"
#include "proxy/stream.h"
#include "proxy/tls_context.h"

namespace pgbranch::proxy {

// Settings every session reads; owned by the ProxyServer and immutable while it serves.
struct SessionConfig {
  const TlsContext* tls = nullptr;  // null: answer SSLRequest with 'N'
  absl::Duration startup_timeout = absl::Seconds(30);
  absl::Duration wake_timeout = absl::Seconds(60);
  absl::Duration connect_timeout = absl::Seconds(10);
  // Where clients reach the main port, for the "name your endpoint" hint.
  std::string public_host = "127.0.0.1";
  int main_port = 0;
};

// The components a session uses; they outlive every session.
struct SessionDeps {
  ControlClient* control = nullptr;
  ConnectionRegistry* registry = nullptr;
  CancelKeyMap* cancel_keys = nullptr;
  ProxyMetrics* metrics = nullptr;
  EpollRelay* epoll_relay = nullptr;      // null: a blocking thread per direction
  SockmapRelay* sockmap_relay = nullptr;  // null: no kernel splicing
};

// One client connection, from its first byte to its close:
//  1. negotiation: SSLRequest ('S' + TLS handshake, or 'N'), GSSENCRequest ('N'), then the
//     StartupMessage, or a CancelRequest (forwarded to the PostgreSQL that issued the key);
//     bounded by startup_timeout;
//  2. routing: the listener's endpoint, else `endpoint=` in options, else the TLS SNI name;
//  3. authentication, when the controller gives the endpoint's credentials: the user must be
//     the branch's role and prove its password with SCRAM-SHA-256 against the branch's
//     verifier. Nothing is woken before this succeeds; a wrong password gets 28P01;
//  4. wake (every connection) and TCP connect to PostgreSQL, retried until wake_timeout;
//  5. the StartupMessage (options rewritten) to PostgreSQL; after step 3 the proxy answers
//     PostgreSQL's SCRAM challenge with the client's ClientKey (pass-through) and hands the
//     client the AuthenticationOk; then the relay: parsed until the first ReadyForQuery (to
//     learn the cancel key), raw bytes afterwards. Without credentials PostgreSQL
//     authenticates the client through the relay.
// A client the proxy refuses gets an ErrorResponse it can show. Run() never throws.
//
// Run() is called once, on the session's own thread; Abort() may be called from any thread.
class Session {
 public:
  // `port_endpoint`: the endpoint of the listener that accepted (empty on the main port).
  Session(int client_fd, std::string port_endpoint, std::string peer, const SessionConfig& config,
          SessionDeps deps);

  void Run();
  // Cuts the connection (both sockets shut down); a wake in progress ends with the control
  // client's Shutdown(). Thread-safe.
  void Abort();

 private:
  // Reads initial packets until a StartupMessage or a CancelRequest.
  absl::Status Negotiate(InitialPacket* packet);
  // Picks the endpoint and rewrites the startup parameters; false after refusing the client.
  bool Route(InitialPacket* packet, std::string* endpoint);
  // What a client proved in step 3, for the login to PostgreSQL.
  struct ClientAuth {
    scram::Verifier verifier;
    std::string client_key;
  };
  // Step 3; `*auth` stays empty when the endpoint has no credentials. False after refusing
  // the client.
  bool Authenticate(const std::string& endpoint, const InitialPacket& startup,
                    std::optional<ClientAuth>* auth);
  // Wakes the endpoint and connects to its PostgreSQL; false after refusing the client.
  bool WakeAndConnect(const std::string& endpoint, BackendAddress* address);
  void Serve(const std::string& endpoint, const BackendAddress& address,
             const InitialPacket& startup, const std::optional<ClientAuth>& auth);
  // Step 5's login with the client's ClientKey; sends the client AuthenticationOk, or
  // PostgreSQL's refusal.
  absl::Status LogInToBackend(const ClientAuth& auth);
  void ForwardCancel(const InitialPacket& packet);
  // Sends an ErrorResponse (best effort) and counts the connection under `result`.
  void Refuse(const ErrorFields& error, const std::string& endpoint_label, const char* result);
  bool aborted();

  const SessionConfig& config_;
  const SessionDeps deps_;
  const std::string port_endpoint_;
  const std::string peer_;
  std::mutex mu_;         // guards the descriptors against Abort()
  Stream client_;         // GUARDED_BY(mu_) for replacement; used freely by Run()'s thread
  Stream server_;         // likewise
  bool aborted_ = false;  // GUARDED_BY(mu_)
};

}  // namespace pgbranch::proxy
