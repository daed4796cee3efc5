#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// The part of the PostgreSQL frontend/backend protocol (v3) the proxy needs to route a
// connection: the untyped initial packets a client sends before the session starts
// (SSLRequest, GSSENCRequest, CancelRequest, StartupMessage), ErrorResponse for refusing a
// client, and rewriting of the `options` startup parameter.
//
// Pure functions over byte strings: no I/O, no state, thread-safe. Every parser treats its input
// as untrusted and returns InvalidArgument (never crashes) on malformed data.
namespace pgbranch::proxy {

inline constexpr uint32_t kProtocolVersion3 = 196608;     // 3.0: (3 << 16) | 0
inline constexpr uint32_t kCancelRequestCode = 80877102;  // (1234 << 16) | 5678
inline constexpr uint32_t kSslRequestCode = 80877103;     // (1234 << 16) | 5679
inline constexpr uint32_t kGssEncRequestCode = 80877104;  // (1234 << 16) | 5680
// PostgreSQL's MAX_STARTUP_PACKET_LENGTH: longer initial packets are refused.
inline constexpr size_t kMaxInitialPacketLength = 10000;

// SQLSTATE codes the proxy answers with.
inline constexpr char kSqlStateProtocolViolation[] = "08P01";
inline constexpr char kSqlStateConnectionRejected[] = "08004";
inline constexpr char kSqlStateCannotConnectNow[] = "57P03";
inline constexpr char kSqlStateInvalidCatalogName[] = "3D000";
inline constexpr char kSqlStateFeatureNotSupported[] = "0A000";
inline constexpr char kSqlStateConnectionFailure[] = "08006";
inline constexpr char kSqlStateInvalidPassword[] = "28P01";

// Authentication request codes (the int32 after 'R').
inline constexpr uint32_t kAuthOk = 0;
inline constexpr uint32_t kAuthCleartextPassword = 3;
inline constexpr uint32_t kAuthMd5Password = 5;
inline constexpr uint32_t kAuthSasl = 10;
inline constexpr uint32_t kAuthSaslContinue = 11;
inline constexpr uint32_t kAuthSaslFinal = 12;
// Longest SASL message the proxy accepts (a SCRAM message is about 200 bytes).
inline constexpr size_t kMaxSaslMessageLength = 4096;

using StartupParameters = std::vector<std::pair<std::string, std::string>>;

// One packet a client sends before the session starts.
struct InitialPacket {
  enum class Kind { kStartup, kSslRequest, kGssEncRequest, kCancelRequest };
  Kind kind = Kind::kStartup;
  uint32_t protocol_version = 0;  // kStartup: as sent (major in the high 16 bits)
  StartupParameters parameters;   // kStartup: name/value pairs in the order sent
  uint32_t cancel_pid = 0;        // kCancelRequest
  uint32_t cancel_key = 0;        // kCancelRequest
};

// Decodes the 4-byte big-endian length word that starts an initial packet (it counts itself)
// and returns the length of the body that follows. InvalidArgument outside [8, 10000].
absl::StatusOr<size_t> ParseInitialPacketLength(const unsigned char header[4]);

// Parses the body of an initial packet (everything after the length word).
absl::StatusOr<InitialPacket> ParseInitialPacket(std::string_view body);

// A complete StartupMessage (length word included) with `parameters` in order.
std::string BuildStartupMessage(uint32_t protocol_version, const StartupParameters& parameters);

// A complete CancelRequest packet.
std::string BuildCancelRequest(uint32_t pid, uint32_t key);

// What the proxy tells a client it refuses. Empty detail/hint are left out.
struct ErrorFields {
  std::string severity = "FATAL";
  std::string sqlstate;
  std::string message;
  std::string detail;
  std::string hint;
};

// A complete ErrorResponse ('E') message.
std::string BuildErrorResponse(const ErrorFields& fields);

// The result of taking the endpoint name out of an `options` startup parameter.
struct OptionsRewrite {
  std::string endpoint;  // empty when options named no endpoint
  std::string options;   // the remaining options, to forward (empty: drop the parameter)
};

// Finds `endpoint=NAME` or `--endpoint=NAME` among the space-separated words of `options`
// (PostgreSQL's splitting rules: runs of whitespace separate words, a backslash escapes the next
// character) and removes it; the other words are kept verbatim, joined by single spaces.
// InvalidArgument when the endpoint is named twice differently or with an empty name.
absl::StatusOr<OptionsRewrite> ExtractEndpointOption(std::string_view options);

// Whether `name` can be an endpoint name: 1-253 characters of [a-z0-9.-], starting and ending
// with a letter or digit (a Kubernetes object name). Routing refuses anything else before it
// reaches a URL or a log line.
bool IsValidEndpointName(std::string_view name);

// The endpoint named by a TLS SNI host name: its first label when the name has at least two
// labels ("dev.db.example.com" -> "dev"); empty for a single label such as "localhost", which
// names a machine rather than an endpoint.
std::string EndpointFromSni(std::string_view server_name);

// --- Authentication (SASL, used for SCRAM-SHA-256) ---

// A complete typed message: `type`, the length word, `body`.
std::string BuildMessage(char type, std::string_view body);
// AuthenticationSASL listing `mechanisms`; AuthenticationSASLContinue/Final carrying `data`;
// AuthenticationOk.
std::string BuildAuthenticationSasl(const std::vector<std::string>& mechanisms);
std::string BuildAuthenticationSaslContinue(std::string_view data);
std::string BuildAuthenticationSaslFinal(std::string_view data);
std::string BuildAuthenticationOk();
// The client's SASLInitialResponse / SASLResponse ('p').
std::string BuildSaslInitialResponse(std::string_view mechanism, std::string_view data);
std::string BuildSaslResponse(std::string_view data);

struct SaslInitialResponse {
  std::string mechanism;
  std::string data;  // empty when the client sent none (length -1)
};
// Parses the body of a SASLInitialResponse.
absl::StatusOr<SaslInitialResponse> ParseSaslInitialResponse(std::string_view body);

// The body of an Authentication ('R') message: its code and what follows it.
struct AuthenticationRequest {
  uint32_t code = 0;
  std::string data;
};
absl::StatusOr<AuthenticationRequest> ParseAuthenticationRequest(std::string_view body);

// The mechanisms of an AuthenticationSASL's data (NUL-terminated names, then an empty one).
std::vector<std::string> ParseSaslMechanisms(std::string_view data);

// Value of parameter `name` in `parameters`, or nullptr.
const std::string* FindParameter(const StartupParameters& parameters, std::string_view name);

}  // namespace pgbranch::proxy
