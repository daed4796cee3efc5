#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/token_signer.h"

namespace pgbranch::pageserver {

// The pageserver's view of its token signing key file (a mounted Kubernetes Secret): verifies
// signed tokens with the key the file holds now. The file is looked at (stat) at most once per
// `recheck` and re-read when its inode, size or mtime changed, so a rotated Secret takes effect
// without a restart (tokens signed with the old key are refused from then on). A file that cannot
// be read or holds a too-short key mid-rotation keeps the previous key (logged as a warning).
//
// Successful verifications are cached by token string (the payload is only parsed once per key);
// expiry is checked on every call. Thread-safe.
class SigningKeyWatcher {
 public:
  using Clock = std::function<absl::Time()>;

  // Fails (with the reason) when the file does not hold a usable key at start.
  static absl::StatusOr<std::unique_ptr<SigningKeyWatcher>> Open(
      const std::string& path, Clock clock = absl::Now, absl::Duration recheck = absl::Seconds(1));

  // TokenSigner::Verify with the current key, at the clock's now.
  absl::StatusOr<TokenClaims> Verify(const std::string& token);
  const std::string& path() const { return path_; }

 private:
  struct FileId {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    int64_t mtime_ns = 0;
    bool operator==(const FileId&) const = default;
  };
  static constexpr size_t kMaxCached = 4096;

  SigningKeyWatcher(std::string path, Clock clock, absl::Duration recheck, TokenSigner signer,
                    FileId id);
  static bool Stat(const std::string& path, FileId* id);
  void MaybeReloadLocked(absl::Time now);

  const std::string path_;
  const Clock clock_;
  const absl::Duration recheck_;
  std::mutex mu_;
  TokenSigner signer_;       // GUARDED_BY(mu_)
  FileId id_;                // GUARDED_BY(mu_)
  absl::Time checked_;       // GUARDED_BY(mu_)
  uint64_t generation_ = 0;  // bumped by every reload. GUARDED_BY(mu_)
  std::unordered_map<std::string, TokenClaims> verified_;  // GUARDED_BY(mu_)
};

}  // namespace pgbranch::pageserver
