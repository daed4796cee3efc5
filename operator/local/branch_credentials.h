#pragma once

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Each branch's own role password in local mode (a child gets a new one, as on Neon: nothing
// is copied from the parent, so a protected branch's password never reaches its children):
//
//   STATE/credentials/branches/<branch uid>.password  the password: connection strings carry it
//   STATE/credentials/branches/<branch uid>.scram     its SCRAM-SHA-256 verifier: what the proxy
//                                                     checks clients against, and what the compute
//                                                     sets on the role at every start
//
// Both 0600 in 0700 directories. Keyed by the branch's uid, so they survive `branch reset` (same
// object) and a branch deleted and created again under the same name gets a new password.
// Created on first use by whichever process needs them first (the CLI printing a connection
// string, the controller serving routes or starting a compute): each file is written to a
// temporary name and link()ed into place, so concurrent creators agree on one winner. A file,
// once there, never changes; Remove() deletes both with the branch.
//
// Thread-safe and safe across processes (no in-memory state).
namespace pgbranch::cli {

class BranchCredentials {
 public:
  // `role`: the login role the credentials are for (the same on every branch).
  explicit BranchCredentials(std::string state_dir, std::string role = "app");

  const std::string& role() const { return role_; }
  std::string PasswordFile(const std::string& branch_uid) const;
  std::string VerifierFile(const std::string& branch_uid) const;

  // The branch's password / verifier, created when missing. InvalidArgument for a uid that
  // is not [0-9a-z-]+.
  absl::StatusOr<std::string> Password(const std::string& branch_uid) const;
  absl::StatusOr<std::string> Verifier(const std::string& branch_uid) const;
  // Makes sure the verifier file exists and returns its path (for the compute's password_file).
  absl::StatusOr<std::string> EnsureVerifierFile(const std::string& branch_uid) const;
  // Deletes both files (no error when absent).
  void Remove(const std::string& branch_uid) const;

 private:
  absl::Status CheckUid(const std::string& branch_uid) const;
  // The file's first line; when missing, creates it holding `make()` first.
  absl::StatusOr<std::string> ReadOrCreate(const std::string& path,
                                           const std::function<std::string()>& make) const;

  const std::string dir_;
  const std::string role_;
};

}  // namespace pgbranch::cli
