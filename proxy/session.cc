#include "proxy/session.h"

#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "proxy/backend_message_scanner.h"
#include "proxy/net_util.h"
#include "proxy/relay.h"
#include "proxy/scram_auth.h"

namespace pgbranch::proxy {
namespace {

// A client may negotiate SSL and GSS encryption once each before its StartupMessage.
constexpr int kMaxNegotiationPackets = 3;

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

Session::Session(int client_fd, std::string port_endpoint, std::string peer,
                 const SessionConfig& config, SessionDeps deps)
    : config_(config),
      deps_(deps),
      port_endpoint_(std::move(port_endpoint)),
      peer_(std::move(peer)),
      client_(client_fd) {}

void Session::Abort() {
  std::lock_guard<std::mutex> lock(mu_);
  aborted_ = true;
  client_.ShutdownBoth();
  server_.ShutdownBoth();
}

bool Session::aborted() {
  std::lock_guard<std::mutex> lock(mu_);
  return aborted_;
}

void Session::Refuse(const ErrorFields& error, const std::string& endpoint_label,
                     const char* result) {
  deps_.metrics->ConnectionResult(endpoint_label, result);
  (void)client_.WriteAll(BuildErrorResponse(error));
  client_.ShutdownWrite();
}

void Session::Run() {
  SetNoDelay(client_.fd());
  int startup_millis = static_cast<int>(absl::ToInt64Milliseconds(config_.startup_timeout));
  if (!client_.SetTimeouts(startup_millis).ok()) return;

  InitialPacket packet;
  absl::Status s = Negotiate(&packet);
  if (!s.ok()) {
    if (absl::IsDeadlineExceeded(s)) {
      Refuse(
          {"FATAL", kSqlStateProtocolViolation, "timed out waiting for the startup packet", "", ""},
          "", "protocol_error");
    } else if (absl::IsInvalidArgument(s) || absl::IsUnimplemented(s)) {
      Refuse({"FATAL",
              absl::IsUnimplemented(s) ? kSqlStateFeatureNotSupported : kSqlStateProtocolViolation,
              std::string(s.message()), "", ""},
             "", "protocol_error");
    }
    // Otherwise the client went away (or the TLS handshake failed): nobody to tell.
    if (GetLogLevel() <= LogLevel::kDebug) {
      Log(LogLevel::kDebug, "Closed connection during negotiation",
          {{"peer", peer_}, {"error", s.ToString()}});
    }
    return;
  }
  if (packet.kind == InitialPacket::Kind::kCancelRequest) {
    ForwardCancel(packet);
    return;
  }
  std::string endpoint;
  if (!Route(&packet, &endpoint)) return;
  std::optional<ClientAuth> auth;
  if (!Authenticate(endpoint, packet, &auth)) return;
  BackendAddress address;
  if (!WakeAndConnect(endpoint, &address)) return;
  Serve(endpoint, address, packet, auth);
}

absl::Status Session::Negotiate(InitialPacket* packet) {
  for (int i = 0; i < kMaxNegotiationPackets; ++i) {
    unsigned char header[4];
    PGB_RETURN_IF_ERROR(client_.ReadFull(reinterpret_cast<char*>(header), sizeof(header)));
    absl::StatusOr<size_t> length = ParseInitialPacketLength(header);
    if (!length.ok()) return length.status();
    std::string body(*length, '\0');
    PGB_RETURN_IF_ERROR(client_.ReadFull(body.data(), body.size()));
    absl::StatusOr<InitialPacket> parsed = ParseInitialPacket(body);
    if (!parsed.ok()) return parsed.status();
    switch (parsed->kind) {
      case InitialPacket::Kind::kSslRequest:
        if (client_.tls()) return absl::InvalidArgumentError("SSLRequest inside TLS");
        if (config_.tls == nullptr) {
          PGB_RETURN_IF_ERROR(client_.WriteAll("N"));
          continue;
        }
        PGB_RETURN_IF_ERROR(client_.WriteAll("S"));
        PGB_RETURN_IF_ERROR(client_.AcceptTls(*config_.tls));
        continue;
      case InitialPacket::Kind::kGssEncRequest:
        PGB_RETURN_IF_ERROR(client_.WriteAll("N"));
        continue;
      case InitialPacket::Kind::kCancelRequest:
      case InitialPacket::Kind::kStartup:
        *packet = std::move(*parsed);
        return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError("too many encryption requests before the startup packet");
}

bool Session::Route(InitialPacket* packet, std::string* endpoint) {
  *endpoint = port_endpoint_;
  StartupParameters& params = packet->parameters;
  for (auto it = params.begin(); it != params.end(); ++it) {
    if (it->first != "options") continue;
    absl::StatusOr<OptionsRewrite> rewrite = ExtractEndpointOption(it->second);
    if (!rewrite.ok()) {
      Refuse(
          {"FATAL", kSqlStateConnectionRejected, std::string(rewrite.status().message()), "", ""},
          "", "no_endpoint");
      return false;
    }
    if (endpoint->empty()) *endpoint = rewrite->endpoint;
    // PostgreSQL rejects options it does not know: endpoint= never reaches it.
    if (rewrite->options.empty()) {
      params.erase(it);
    } else {
      it->second = rewrite->options;
    }
    break;
  }
  if (endpoint->empty() && client_.tls()) *endpoint = EndpointFromSni(client_.server_name());
  if (endpoint->empty()) {
    std::string example = absl::StrCat("postgresql://USER@", config_.public_host, ":",
                                       config_.main_port, "/DB?options=endpoint%3DNAME");
    Refuse({"FATAL", kSqlStateConnectionRejected,
            "no endpoint named: the proxy does not know where to route this connection",
            absl::StrCat("Connections to the proxy's main port must name their endpoint, e.g. ",
                         example, " (or options='endpoint=NAME' in a keyword/value string)."),
            "Connect to the endpoint's own port (pgbranch connstr NAME prints it), or add "
            "options=endpoint=NAME to the connection string."},
           "", "no_endpoint");
    return false;
  }
  if (!IsValidEndpointName(*endpoint)) {
    Refuse({"FATAL", kSqlStateInvalidCatalogName,
            absl::StrCat("\"", endpoint->substr(0, 80), "\" is not a valid endpoint name"),
            "Endpoint names are lower-case letters, digits, '-' and '.'.", ""},
           "unknown", "not_found");
    return false;
  }
  return true;
}

bool Session::Authenticate(const std::string& endpoint, const InitialPacket& startup,
                           std::optional<ClientAuth>* auth) {
  absl::StatusOr<std::optional<EndpointCredentials>> credentials =
      deps_.control->Credentials(endpoint);
  if (!credentials.ok() || !credentials->has_value()) return true;  // PostgreSQL authenticates
  const std::string* user = FindParameter(startup.parameters, "user");
  std::string user_name = user == nullptr ? "" : *user;
  ErrorFields failed{
      "FATAL", kSqlStateInvalidPassword,
      absl::StrCat("password authentication failed for user \"", user_name.substr(0, 64), "\""), "",
      ""};
  absl::StatusOr<scram::Verifier> verifier = scram::ParseVerifier((*credentials)->verifier);
  if (!verifier.ok()) {
    LogWarning("The controller's verifier for the endpoint is not valid",
               {{"endpoint", endpoint}, {"error", verifier.status().ToString()}});
    Refuse({"FATAL", kSqlStateCannotConnectNow,
            absl::StrCat("endpoint \"", endpoint, "\" has no valid credentials"), "",
            "Look at the controller's log."},
           endpoint, "auth_failed");
    return false;
  }
  // Only the branch's role has a verifier here: another user is refused like a wrong
  // password, as PostgreSQL refuses an unknown role (without saying which it was).
  if (user_name != (*credentials)->role) {
    Refuse(failed, endpoint, "auth_failed");
    return false;
  }
  absl::StatusOr<std::string> client_key = AuthenticateClient(&client_, *verifier);
  if (!client_key.ok()) {
    const absl::Status& s = client_key.status();
    if (absl::IsPermissionDenied(s)) {
      Log(LogLevel::kInfo, "Password authentication failed",
          {{"endpoint", endpoint}, {"user", user_name.substr(0, 64)}, {"peer", peer_}});
      Refuse(failed, endpoint, "auth_failed");
    } else if (absl::IsInvalidArgument(s) || absl::IsFailedPrecondition(s)) {
      Refuse({"FATAL", kSqlStateProtocolViolation, std::string(s.message()), "", ""}, endpoint,
             "protocol_error");
    }
    // Otherwise the client went away: nobody to tell.
    return false;
  }
  *auth = ClientAuth{*std::move(verifier), *std::move(client_key)};
  return true;
}

bool Session::WakeAndConnect(const std::string& endpoint, BackendAddress* address) {
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(absl::ToInt64Milliseconds(config_.wake_timeout));
  while (true) {
    auto started = std::chrono::steady_clock::now();
    absl::StatusOr<BackendAddress> woken = deps_.control->Wake(endpoint);
    if (!woken.ok()) {
      const absl::Status& s = woken.status();
      if (absl::IsNotFound(s)) {
        deps_.metrics->WakeFailed("not_found");
        Refuse(
            {"FATAL", kSqlStateInvalidCatalogName,
             absl::StrCat("endpoint \"", endpoint, "\" does not exist"), std::string(s.message()),
             "List the endpoints with `pgbranch endpoint list`; create one with `pgbranch "
             "endpoint create NAME --branch BRANCH`."},
            "unknown", "not_found");
        return false;
      }
      deps_.metrics->WakeFailed(absl::IsDeadlineExceeded(s) ? "timeout" : "unavailable");
      if (!absl::IsCancelled(s)) {
        LogWarning("Cannot wake endpoint", {{"endpoint", endpoint}, {"error", s.ToString()}});
      }
      Refuse({"FATAL", kSqlStateCannotConnectNow,
              absl::StrCat("endpoint \"", endpoint, "\" could not be woken up: ", s.message()), "",
              absl::StrCat("Retry in a moment. If it keeps failing, look at `pgbranch endpoint "
                           "get ",
                           endpoint, "` and the controller's log.")},
             endpoint, "wake_failed");
      return false;
    }
    deps_.metrics->ObserveWake(SecondsSince(started));
    *address = *woken;
    auto now = std::chrono::steady_clock::now();
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    absl::Duration connect_timeout =
        std::min(config_.connect_timeout, absl::Milliseconds(std::max<int64_t>(left.count(), 100)));
    absl::StatusOr<int> fd = ConnectTcp(address->host, address->port, connect_timeout);
    if (fd.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      server_ = Stream(*fd);
      if (aborted_) return false;
      return true;
    }
    // Suspended again between the wake and the connect, or still coming up: wake again while
    // time is left.
    if (aborted() || std::chrono::steady_clock::now() + std::chrono::milliseconds(200) > deadline) {
      LogWarning("Cannot connect to the endpoint's PostgreSQL",
                 {{"endpoint", endpoint}, {"error", fd.status().ToString()}});
      Refuse({"FATAL", kSqlStateCannotConnectNow,
              absl::StrCat("endpoint \"", endpoint,
                           "\" is awake but its PostgreSQL does not "
                           "accept connections: ",
                           fd.status().message()),
              "", "Retry in a moment."},
             endpoint, "backend_unreachable");
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

void Session::Serve(const std::string& endpoint, const BackendAddress& address,
                    const InitialPacket& startup, const std::optional<ClientAuth>& auth) {
  deps_.registry->Open(endpoint);
  deps_.metrics->ConnectionOpened(endpoint);
  deps_.metrics->ConnectionResult(endpoint, "ok");
  BackendMessageScanner scanner;
  absl::Status sent =
      server_.WriteAll(BuildStartupMessage(startup.protocol_version, startup.parameters));
  if (sent.ok() && auth.has_value()) sent = LogInToBackend(*auth);
  if (sent.ok()) {
    // PostgreSQL's authentication_timeout bounds the exchange from here on.
    (void)client_.SetTimeouts(0);
    proxy::Relay relay(&client_, &server_, &deps_.metrics->bytes_client_to_server(),
                       &deps_.metrics->bytes_server_to_client(), deps_.epoll_relay,
                       deps_.sockmap_relay);
    Relay::End end = relay.RunStartup(&scanner);
    if (scanner.has_key()) {
      deps_.cancel_keys->Add(scanner.backend_pid(), scanner.cancel_key(), {endpoint, address});
    }
    if (end == Relay::End::kReady) relay.RunSession();
  }
  if (scanner.has_key()) deps_.cancel_keys->Remove(scanner.backend_pid(), scanner.cancel_key());
  deps_.metrics->ConnectionClosed(endpoint);
  deps_.registry->Close(endpoint);
}

absl::Status Session::LogInToBackend(const ClientAuth& auth) {
  int millis = static_cast<int>(absl::ToInt64Milliseconds(config_.startup_timeout));
  PGB_RETURN_IF_ERROR(server_.SetTimeouts(millis));
  std::string forward;
  absl::Status s = proxy::LogInToBackend(&server_, auth.verifier, auth.client_key, &forward);
  if (!s.ok()) {
    LogWarning("Cannot log in to the endpoint's PostgreSQL with the client's proof",
               {{"peer", peer_}, {"error", s.ToString()}});
    if (forward.empty()) {
      forward = BuildErrorResponse(
          {"FATAL", kSqlStateConnectionFailure,
           absl::StrCat("the proxy cannot log in to PostgreSQL: ", s.message()), "", ""});
    }
    (void)client_.WriteAll(forward);
    client_.ShutdownWrite();
    return s;
  }
  PGB_RETURN_IF_ERROR(server_.SetTimeouts(0));
  return client_.WriteAll(forward);
}

void Session::ForwardCancel(const InitialPacket& packet) {
  std::optional<CancelTarget> target =
      deps_.cancel_keys->Find(packet.cancel_pid, packet.cancel_key);
  deps_.metrics->ConnectionResult("", "cancel");
  if (!target.has_value()) {
    deps_.metrics->CancelRequest("unknown_key");
    return;  // as PostgreSQL does: no answer either way
  }
  absl::StatusOr<int> fd = ConnectTcp(target->backend.host, target->backend.port, absl::Seconds(5));
  if (!fd.ok()) {
    deps_.metrics->CancelRequest("failed");
    LogWarning("Cannot forward a cancel request",
               {{"endpoint", target->endpoint}, {"error", fd.status().ToString()}});
    return;
  }
  Stream backend(*fd);
  (void)backend.SetTimeouts(5000);
  if (!backend.WriteAll(BuildCancelRequest(packet.cancel_pid, packet.cancel_key)).ok()) {
    deps_.metrics->CancelRequest("failed");
    return;
  }
  // PostgreSQL closes once it has handled the request; wait for that as libpq does, so the
  // client's "cancel sent" means the backend got it.
  char byte;
  size_t n;
  (void)backend.Read(&byte, 1, &n);
  deps_.metrics->CancelRequest("forwarded");
}

}  // namespace pgbranch::proxy
