#include "pageserver/server/signing_key_watcher.h"

#include <sys/stat.h>

#include <optional>

#include "common/log.h"

namespace pgbranch::pageserver {

absl::StatusOr<std::unique_ptr<SigningKeyWatcher>> SigningKeyWatcher::Open(const std::string& path,
                                                                           Clock clock,
                                                                           absl::Duration recheck) {
  FileId id;
  Stat(path, &id);
  auto signer = TokenSigner::FromKeyFile(path);
  if (!signer.ok()) return signer.status();
  return std::unique_ptr<SigningKeyWatcher>(
      new SigningKeyWatcher(path, std::move(clock), recheck, std::move(*signer), id));
}

SigningKeyWatcher::SigningKeyWatcher(std::string path, Clock clock, absl::Duration recheck,
                                     TokenSigner signer, FileId id)
    : path_(std::move(path)),
      clock_(std::move(clock)),
      recheck_(recheck),
      signer_(std::move(signer)),
      id_(id),
      checked_(clock_()) {}

bool SigningKeyWatcher::Stat(const std::string& path, FileId* id) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return false;  // follows the Secret volume's symlinks
  id->dev = st.st_dev;
  id->ino = st.st_ino;
  id->size = st.st_size;
  id->mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return true;
}

void SigningKeyWatcher::MaybeReloadLocked(absl::Time now) {
  if (now - checked_ < recheck_) return;
  checked_ = now;
  FileId id;
  if (!Stat(path_, &id) || id == id_) return;
  auto signer = TokenSigner::FromKeyFile(path_);
  if (!signer.ok()) {
    LogWarning("Keeping the previous token signing key",
               {{"file", path_}, {"error", std::string(signer.status().message())}});
    return;
  }
  signer_ = std::move(*signer);
  id_ = id;
  verified_.clear();
  ++generation_;
  LogInfo("Reloaded the token signing key", {{"file", path_}});
}

absl::StatusOr<TokenClaims> SigningKeyWatcher::Verify(const std::string& token) {
  const absl::Time now = clock_();
  std::optional<TokenSigner> signer;
  uint64_t generation = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    MaybeReloadLocked(now);
    auto it = verified_.find(token);
    if (it != verified_.end()) {
      if (it->second.expires_unix == 0 || absl::ToUnixSeconds(now) < it->second.expires_unix) {
        return it->second;
      }
      verified_.erase(it);  // expired: Verify below says so with the reason
    }
    signer = signer_;
    generation = generation_;
  }
  // The full check (HMAC, base64, claims parse: tens of microseconds) runs without the lock.
  auto claims = signer->Verify(token, now);
  if (claims.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    if (generation == generation_) {  // not verified with a key that was rotated away meanwhile
      if (verified_.size() >= kMaxCached) verified_.clear();
      verified_.emplace(token, *claims);
    }
  }
  return claims;
}

}  // namespace pgbranch::pageserver
