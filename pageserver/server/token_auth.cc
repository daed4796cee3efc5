#include "pageserver/server/token_auth.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace pgbranch::pageserver {
namespace {

// Compares in time independent of where the strings differ.
bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

absl::StatusOr<TokenAuth> TokenAuth::LoadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read token file ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  auto auth = FromYaml(ss.str());
  if (!auth.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("token file ", path, ": ", auth.status().message()));
  }
  return auth;
}

absl::StatusOr<TokenAuth> TokenAuth::FromYaml(const std::string& yaml) {
  TokenAuth auth;
  auth.enabled_ = true;
  try {
    YAML::Node root = YAML::Load(yaml);
    if (!root["tokens"] || !root["tokens"].IsSequence()) {
      return absl::InvalidArgumentError("expected a 'tokens' list");
    }
    for (const auto& t : root["tokens"]) {
      Grant g;
      if (!t["token"]) return absl::InvalidArgumentError("a token entry has no 'token'");
      g.token = t["token"].as<std::string>();
      if (g.token.size() < 8) {
        return absl::InvalidArgumentError("tokens must be at least 8 characters long");
      }
      if (t["scope"] && t["scope"].as<std::string>() == "admin") g.admin = true;
      if (t["tenant"]) g.tenant_id = t["tenant"].as<std::string>();
      if (t["timeline"]) g.timeline_id = t["timeline"].as<std::string>();
      if (!g.admin && g.tenant_id.empty()) {
        return absl::InvalidArgumentError("a token needs 'scope: admin' or a 'tenant'");
      }
      auth.grants_.push_back(std::move(g));
    }
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(e.what());
  }
  return auth;
}

absl::Status TokenAuth::AddSigningKeyFile(const std::string& path, SigningKeyWatcher::Clock clock) {
  auto watcher = SigningKeyWatcher::Open(path, std::move(clock));
  if (!watcher.ok()) return watcher.status();
  signing_ = std::move(*watcher);
  enabled_ = true;
  return absl::OkStatus();
}

absl::Status TokenAuth::Check(const std::string& authorization, bool admin_only,
                              const std::string& tenant_id, const std::string& timeline_id) const {
  if (!enabled_) return absl::OkStatus();
  const std::string prefix = "Bearer ";
  if (authorization.rfind(prefix, 0) != 0) {
    return absl::UnauthenticatedError(
        "missing 'authorization: Bearer <token>' metadata; pass a token (pagectl --token-file)");
  }
  std::string token = authorization.substr(prefix.size());
  Grant signed_grant;
  const Grant* grant = nullptr;
  if (TokenSigner::IsSignedToken(token)) {
    if (signing_ == nullptr) {
      return absl::UnauthenticatedError(
          "signed (pgb1.) tokens are not accepted: the pageserver has no "
          "--token-signing-key-file");
    }
    absl::StatusOr<TokenClaims> claims = signing_->Verify(token);
    if (!claims.ok()) return claims.status();
    signed_grant.admin = claims->admin;
    signed_grant.tenant_id = claims->tenant;
    signed_grant.timeline_id = claims->timeline;
    grant = &signed_grant;
  } else {
    for (const Grant& g : grants_) {
      if (ConstantTimeEquals(g.token, token)) grant = &g;
    }
    if (grant == nullptr) return absl::UnauthenticatedError("the token is not valid");
  }
  if (grant->admin) return absl::OkStatus();
  if (admin_only) return absl::PermissionDeniedError("this call needs an admin token");
  if (grant->tenant_id != tenant_id) {
    return absl::PermissionDeniedError(
        absl::StrCat("the token does not grant access to tenant ", tenant_id));
  }
  if (!grant->timeline_id.empty() && grant->timeline_id != timeline_id) {
    return absl::PermissionDeniedError(
        absl::StrCat("the token does not grant access to timeline ", timeline_id));
  }
  return absl::OkStatus();
}

}  // namespace pgbranch::pageserver
