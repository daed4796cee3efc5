#include "operator/model/field_error.h"

#include <optional>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace pgbranch::control {
namespace {

constexpr char kFieldUrl[] = "pgbranch.io/error/field";
constexpr char kDetailUrl[] = "pgbranch.io/error/detail";
constexpr char kReasonUrl[] = "pgbranch.io/error/reason";

std::string Payload(const absl::Status& s, const char* url) {
  auto p = s.GetPayload(url);
  return p ? std::string(*p) : std::string();
}

}  // namespace

absl::Status MakeError(absl::StatusCode code, const std::string& message, const std::string& field,
                       const std::string& detail, const std::string& reason) {
  absl::Status s(code, message);
  s.SetPayload(kFieldUrl, absl::Cord(field));
  s.SetPayload(kDetailUrl, absl::Cord(detail));
  if (!reason.empty()) s.SetPayload(kReasonUrl, absl::Cord(reason));
  return s;
}

absl::Status FieldError(absl::StatusCode code, const std::string& object, const std::string& field,
                        const std::string& detail, const std::string& reason) {
  std::string message;
  if (!object.empty()) absl::StrAppend(&message, object, ": ");
  if (!field.empty()) absl::StrAppend(&message, field, ": ");
  absl::StrAppend(&message, detail);
  return MakeError(code, message, field, detail, reason);
}

absl::Status ObjectError(absl::StatusCode code, const std::string& message,
                         const std::string& reason) {
  return MakeError(code, message, "", message, reason);
}

std::string ErrorField(const absl::Status& s) { return Payload(s, kFieldUrl); }

std::string ErrorDetail(const absl::Status& s) {
  if (s.GetPayload(kDetailUrl)) return Payload(s, kDetailUrl);
  return std::string(s.message());
}

std::string ErrorReason(const absl::Status& s) {
  if (s.GetPayload(kReasonUrl)) return Payload(s, kReasonUrl);
  switch (s.code()) {
    case absl::StatusCode::kOk:
      return "";
    case absl::StatusCode::kNotFound:
      return "NotFound";
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return "Invalid";
    case absl::StatusCode::kAlreadyExists:
      return "AlreadyExists";
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAborted:
      return "Conflict";
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kResourceExhausted:
      return "ServiceUnavailable";
    case absl::StatusCode::kDeadlineExceeded:
      return "Timeout";
    default:
      return "InternalError";
  }
}

std::string ObjectName(const std::string& kind, const std::string& name) {
  return absl::StrCat(kind, " \"", name, "\"");
}

}  // namespace pgbranch::control
