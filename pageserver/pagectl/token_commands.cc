#include "pageserver/pagectl/token_commands.h"

#include "absl/strings/str_cat.h"
#include "common/token_signer.h"

namespace pgbranch::pagectl {
namespace {

absl::Status Mint(const CommandContext& ctx, absl::Time now) {
  const CommandOptions& o = *ctx.options;
  TokenClaims claims;
  claims.admin = o.token_scope == "admin";
  if (claims.admin && (!o.tenant.empty() || !o.timeline.empty())) {
    return absl::InvalidArgumentError(
        "an admin token covers every tenant: drop --tenant/--timeline or use --scope tenant");
  }
  if (!claims.admin && o.tenant.empty()) {
    return absl::InvalidArgumentError("--scope tenant needs --tenant T");
  }
  claims.tenant = o.tenant;
  claims.timeline = o.timeline;
  if (o.token_ttl) {
    if (*o.token_ttl <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError("--ttl must be positive (e.g. 1h, 30m, 720h)");
    }
    claims.expires_unix = absl::ToUnixSeconds(now + *o.token_ttl);
  }
  absl::StatusOr<TokenSigner> signer = TokenSigner::FromKeyFile(o.signing_key_file);
  if (!signer.ok()) return signer.status();
  absl::StatusOr<std::string> token = signer->Mint(claims);
  if (!token.ok()) return token.status();
  *ctx.out << *token << "\n";
  return absl::OkStatus();
}

}  // namespace

absl::Status RunTokenCommand(const CommandContext& ctx, const std::string& verb, absl::Time now) {
  if (verb == "mint") return Mint(ctx, now);
  return absl::InvalidArgumentError(absl::StrCat("unknown token command \"", verb, "\""));
}

}  // namespace pgbranch::pagectl
