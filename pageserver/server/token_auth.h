#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pageserver/server/signing_key_watcher.h"

namespace pgbranch::pageserver {

// Bearer-token authorisation. The token file is YAML:
//   tokens:
//     - token: "s3cret-admin"        # the operator
//       scope: admin
//     - token: "s3cret-tenant"        # a compute of one tenant...
//       tenant: 7d0c...
//       timeline: 1a2b...             # ...optionally limited to one timeline
// and/or signed tokens (common/token_signer.h: `pgb1.<claims>.<HMAC>`) verified with the key in
// a signing key file (AddSigningKeyFile; re-read when the file changes), carrying the same
// scopes. Without either every request is allowed. Thread-safe after construction.
class TokenAuth {
 public:
  struct Grant {
    std::string token;
    bool admin = false;
    std::string tenant_id;
    std::string timeline_id;  // empty: any timeline of the tenant
  };

  // An authoriser that allows everything.
  TokenAuth() = default;
  static absl::StatusOr<TokenAuth> LoadFile(const std::string& path);
  static absl::StatusOr<TokenAuth> FromYaml(const std::string& yaml);
  // Also accepts signed tokens verified with the key in `path`; enables auth.
  absl::Status AddSigningKeyFile(const std::string& path,
                                 SigningKeyWatcher::Clock clock = absl::Now);

  bool enabled() const { return enabled_; }
  // `authorization` is the raw metadata value ("Bearer <token>"), empty if absent.
  // Unauthenticated without a valid token, PermissionDenied outside the token's scope.
  absl::Status Check(const std::string& authorization, bool admin_only,
                     const std::string& tenant_id, const std::string& timeline_id) const;

 private:
  bool enabled_ = false;
  std::vector<Grant> grants_;
  std::shared_ptr<SigningKeyWatcher> signing_;  // null: signed tokens are refused
};

}  // namespace pgbranch::pageserver
