#include "common/token_signer.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/scram.h"

namespace pgbranch {
namespace {

// A JSON string literal (the claims hold names and IDs; escape whatever they contain).
std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  out.push_back('"');
  return out;
}

absl::Status Unauthenticated(std::string_view why) {
  return absl::UnauthenticatedError(absl::StrCat("the token is not valid: ", std::string(why)));
}

// The claims JSON is parsed with yaml-cpp: a JSON object is a YAML flow mapping.
absl::StatusOr<TokenClaims> ParseClaims(const std::string& json) {
  TokenClaims claims;
  try {
    YAML::Node root = YAML::Load(json);
    if (!root.IsMap()) return Unauthenticated("its claims are not a JSON object");
    const std::string scope = root["scope"] ? root["scope"].as<std::string>() : "";
    if (scope == "admin") {
      claims.admin = true;
    } else if (scope != "tenant") {
      return Unauthenticated("its scope is neither admin nor tenant");
    }
    if (root["tenant"]) claims.tenant = root["tenant"].as<std::string>();
    if (root["timeline"]) claims.timeline = root["timeline"].as<std::string>();
    if (root["exp"]) claims.expires_unix = root["exp"].as<int64_t>();
  } catch (const std::exception& e) {
    return Unauthenticated(absl::StrCat("its claims do not parse (", e.what(), ")"));
  }
  if (!claims.admin && claims.tenant.empty())
    return Unauthenticated("a tenant token names no tenant");
  return claims;
}

}  // namespace

absl::StatusOr<TokenSigner> TokenSigner::FromKey(std::string key) {
  if (key.size() < kMinKeyLength) {
    return absl::InvalidArgumentError(absl::StrCat("the token signing key has ", key.size(),
                                                   " bytes; it needs at least ", kMinKeyLength,
                                                   " (e.g. openssl rand -hex 32)"));
  }
  return TokenSigner(std::move(key));
}

absl::StatusOr<TokenSigner> TokenSigner::FromKeyFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read the signing key file ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  auto signer = FromKey(std::string(absl::StripAsciiWhitespace(ss.str())));
  if (!signer.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", signer.status().message()));
  }
  return signer;
}

bool TokenSigner::IsSignedToken(std::string_view token) {
  return token.substr(0, sizeof(kPrefix) - 1) == kPrefix;
}

absl::StatusOr<std::string> TokenSigner::Mint(const TokenClaims& claims) const {
  if (!claims.admin && claims.tenant.empty()) {
    return absl::InvalidArgumentError("a tenant token needs a tenant");
  }
  if (claims.admin && (!claims.tenant.empty() || !claims.timeline.empty())) {
    return absl::InvalidArgumentError("an admin token covers every tenant: give no tenant");
  }
  std::string json = absl::StrCat("{\"scope\":", JsonString(claims.admin ? "admin" : "tenant"));
  if (!claims.tenant.empty()) absl::StrAppend(&json, ",\"tenant\":", JsonString(claims.tenant));
  if (!claims.timeline.empty()) {
    absl::StrAppend(&json, ",\"timeline\":", JsonString(claims.timeline));
  }
  if (claims.expires_unix != 0) absl::StrAppend(&json, ",\"exp\":", claims.expires_unix);
  json += "}";
  const std::string signed_part = absl::StrCat(kPrefix, absl::WebSafeBase64Escape(json));
  return absl::StrCat(signed_part, ".",
                      absl::WebSafeBase64Escape(scram::HmacSha256(key_, signed_part)));
}

absl::StatusOr<TokenClaims> TokenSigner::Verify(std::string_view token, absl::Time now) const {
  if (!IsSignedToken(token)) return Unauthenticated("it does not start with pgb1.");
  const size_t dot = token.rfind('.');
  if (dot < sizeof(kPrefix) - 1 + 1) return Unauthenticated("it has no signature part");
  const std::string_view signed_part = token.substr(0, dot);
  std::string signature;
  if (!absl::WebSafeBase64Unescape(std::string(token.substr(dot + 1)), &signature)) {
    return Unauthenticated("its signature is not base64url");
  }
  // The signature first: nothing from an unsigned payload is parsed.
  if (!scram::SecureEquals(signature, scram::HmacSha256(key_, signed_part))) {
    return Unauthenticated("bad signature (minted with another key? the key may have rotated)");
  }
  std::string json;
  if (!absl::WebSafeBase64Unescape(std::string(signed_part.substr(sizeof(kPrefix) - 1)), &json)) {
    return Unauthenticated("its claims are not base64url");
  }
  auto claims = ParseClaims(json);
  if (!claims.ok()) return claims.status();
  if (claims->expires_unix != 0 && absl::ToUnixSeconds(now) >= claims->expires_unix) {
    return Unauthenticated(absl::StrCat(
        "it expired at ",
        absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(claims->expires_unix),
                         absl::UTCTimeZone()),
        "; mint a new one (pagectl token mint)"));
  }
  return claims;
}

}  // namespace pgbranch
