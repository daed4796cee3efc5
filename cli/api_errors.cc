#include "cli/api_errors.h"

#include <map>
#include <optional>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace pgbranch::cli {
namespace {

constexpr char kFieldUrl[] = "type.pgbranch.io/api.field";
constexpr char kDetailUrl[] = "type.pgbranch.io/api.detail";

std::string Payload(const absl::Status& status, const char* url) {
  auto p = status.GetPayload(url);
  return p ? std::string(*p) : std::string();
}

}  // namespace

absl::Status WithApiErrorFields(absl::Status status, std::string_view field,
                                std::string_view detail) {
  if (status.ok()) return status;
  if (!field.empty()) status.SetPayload(kFieldUrl, absl::Cord(std::string(field)));
  if (!detail.empty()) status.SetPayload(kDetailUrl, absl::Cord(std::string(detail)));
  return status;
}

std::string ApiErrorField(const absl::Status& status) { return Payload(status, kFieldUrl); }
std::string ApiErrorDetail(const absl::Status& status) { return Payload(status, kDetailUrl); }

std::string FlagForField(std::string_view field) {
  static const auto* flags = new std::map<std::string, std::string, std::less<>>{
      {"spec.parent", "--parent"},
      {"spec.lsn", "--lsn"},
      {"spec.timestamp", "--at"},
      {"spec.ttl", "--ttl"},
      {"spec.expireTime", "--expire-time"},
      {"spec.noExpiry", "--no-expiry"},
      {"spec.protected", "--protected"},
      {"spec.branch", "--branch"},
      {"spec.type", "--type"},
      {"spec.suspendTimeout", "--suspend-timeout"},
  };
  auto it = flags->find(field);
  return it == flags->end() ? std::string() : it->second;
}

absl::Status WithFlagNames(const absl::Status& status) {
  std::string flag = FlagForField(ApiErrorField(status));
  std::string detail = ApiErrorDetail(status);
  if (flag.empty() || detail.empty()) return status;
  absl::Status out(status.code(), absl::StrCat(flag, ": ", detail));
  status.ForEachPayload(
      [&out](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

}  // namespace pgbranch::cli
