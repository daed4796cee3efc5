#include "operator/local/local_tls.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/process_util.h"

namespace pgbranch::cli {
namespace {

namespace fs = std::filesystem;

constexpr long kValiditySeconds = 10L * 365 * 24 * 3600;

struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CertFree {
  void operator()(X509* c) const { X509_free(c); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;
using Cert = std::unique_ptr<X509, CertFree>;

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

absl::Status Failed(const std::string& what) {
  return absl::InternalError(
      absl::StrCat("cannot make the TLS certificate: ", what, ": ", OpenSslError()));
}

absl::Status AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) return Failed(absl::StrCat("extension ", value));
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return ok == 1 ? absl::OkStatus() : Failed("X509_add_ext");
}

// A certificate for `key` named `cn`, signed by `issuer_key` (`issuer` null: self-signed).
absl::StatusOr<Cert> MakeCert(EVP_PKEY* key, const std::string& cn, X509* issuer,
                              EVP_PKEY* issuer_key, bool ca) {
  Cert cert(X509_new());
  if (!cert) return Failed("X509_new");
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof(serial));
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), kValiditySeconds);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("pgbranch local mode"), -1, -1,
                             0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* signer = issuer ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  absl::Status s = AddExtension(cert.get(), signer, NID_subject_key_identifier, "hash");
  if (s.ok()) s = AddExtension(cert.get(), signer, NID_authority_key_identifier, "keyid:always");
  if (ca) {
    if (s.ok()) s = AddExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    if (s.ok()) s = AddExtension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    if (s.ok()) s = AddExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    if (s.ok()) {
      s = AddExtension(cert.get(), signer, NID_key_usage, "critical,digitalSignature");
    }
    if (s.ok()) s = AddExtension(cert.get(), signer, NID_ext_key_usage, "serverAuth");
    if (s.ok()) {
      s = AddExtension(cert.get(), signer, NID_subject_alt_name,
                       "DNS:localhost,IP:127.0.0.1,IP:::1");
    }
  }
  if (!s.ok()) return s;
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) == 0) return Failed("X509_sign");
  return cert;
}

absl::Status WritePem(const std::string& path, mode_t mode,
                      const std::function<int(FILE*)>& write) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  }
  FILE* f = ::fdopen(fd, "w");
  bool ok = f != nullptr && write(f) == 1 && std::fflush(f) == 0 && ::fsync(fd) == 0;
  if (f != nullptr) {
    std::fclose(f);
  } else {
    ::close(fd);
  }
  return ok ? absl::OkStatus() : Failed(absl::StrCat("writing ", path));
}

absl::Status MakeTlsDir(const std::string& dir) {
  Key ca_key(EVP_EC_gen("P-256"));
  Key server_key(EVP_EC_gen("P-256"));
  if (!ca_key || !server_key) return Failed("EVP_EC_gen");
  absl::StatusOr<Cert> ca =
      MakeCert(ca_key.get(), "pgbranch local CA", nullptr, ca_key.get(), true);
  if (!ca.ok()) return ca.status();
  absl::StatusOr<Cert> server =
      MakeCert(server_key.get(), "localhost", ca->get(), ca_key.get(), false);
  if (!server.ok()) return server.status();
  absl::Status s = WritePem(dir + "/ca.key", 0600, [&](FILE* f) {
    return PEM_write_PrivateKey(f, ca_key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  });
  if (s.ok()) {
    s = WritePem(dir + "/server.key", 0600, [&](FILE* f) {
      return PEM_write_PrivateKey(f, server_key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    });
  }
  if (s.ok()) {
    s = WritePem(dir + "/ca.crt", 0644, [&](FILE* f) { return PEM_write_X509(f, ca->get()); });
  }
  if (s.ok()) {
    s = WritePem(dir + "/server.crt", 0644,
                 [&](FILE* f) { return PEM_write_X509(f, server->get()); });
  }
  return s;
}

LocalTlsFiles FilesIn(const std::string& dir) {
  return {dir + "/ca.crt", dir + "/server.crt", dir + "/server.key"};
}

bool Complete(const std::string& dir) {
  std::error_code ec;
  for (const char* f : {"ca.crt", "ca.key", "server.crt", "server.key"}) {
    if (fs::file_size(fs::path(dir) / f, ec) == 0 || ec) return false;
  }
  return true;
}

std::string MarkerFile(const std::string& state_dir) { return state_dir + "/run/proxy-tls"; }

}  // namespace

absl::StatusOr<LocalTlsFiles> EnsureLocalTls(const std::string& state_dir) {
  const std::string dir = state_dir + "/tls";
  if (Complete(dir)) return FilesIn(dir);
  std::error_code ec;
  fs::remove_all(dir, ec);  // incomplete: made again
  const std::string tmp = absl::StrCat(dir, ".tmp.", ::getpid());
  fs::remove_all(tmp, ec);
  if (::mkdir(tmp.c_str(), 0700) != 0) {
    return absl::InternalError(absl::StrCat("cannot create ", tmp, ": ", std::strerror(errno)));
  }
  absl::Status s = MakeTlsDir(tmp);
  if (s.ok() && ::rename(tmp.c_str(), dir.c_str()) != 0) {
    s = absl::InternalError(absl::StrCat("cannot rename ", tmp, ": ", std::strerror(errno)));
  }
  if (!s.ok()) {
    fs::remove_all(tmp, ec);
    return s;
  }
  // The CA certificate must be readable by clients; the keys stay 0600.
  ::chmod(dir.c_str(), 0755);
  return FilesIn(dir);
}

absl::Status ConfigureLocalTls(const std::string& state_dir, bool enabled) {
  std::error_code ec;
  fs::create_directories(state_dir + "/run", ec);
  if (!enabled) {
    ::unlink(MarkerFile(state_dir).c_str());
    return absl::OkStatus();
  }
  absl::StatusOr<LocalTlsFiles> files = EnsureLocalTls(state_dir);
  if (!files.ok()) return files.status();
  std::string tmp = MarkerFile(state_dir) + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) return absl::InternalError(absl::StrCat("cannot write ", tmp));
  std::fprintf(f, "%s\n", files->ca_cert.c_str());
  std::fclose(f);
  if (::rename(tmp.c_str(), MarkerFile(state_dir).c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot write ", MarkerFile(state_dir)));
  }
  return absl::OkStatus();
}

std::vector<std::string> LocalProxyTlsArgs(const std::string& state_dir) {
  if (LocalTlsRootCert(state_dir).empty()) return {};
  LocalTlsFiles files = FilesIn(state_dir + "/tls");
  return {"--tls-cert", files.cert, "--tls-key", files.key};
}

std::string LocalTlsRootCert(const std::string& state_dir) {
  return std::string(absl::StripAsciiWhitespace(ReadFileOrEmpty(MarkerFile(state_dir))));
}

}  // namespace pgbranch::cli
