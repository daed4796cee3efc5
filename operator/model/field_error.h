#pragma once

#include <string>

#include "absl/status/status.h"

// Errors about one field of one object, written for a person and still machine-readable. The
// message names the object and the YAML field path ("Branch \"dev\": spec.parent: branch \"nope\"
// does not exist; create it first"); the status also carries, as payloads, the field path
// ("spec.parent"), the detail without the object/field prefix ("branch \"nope\" does not exist;
// create it first") and a Kubernetes-style reason ("Invalid", "AlreadyExists", "Conflict"), so
// the local API can reply with each separately and the CLI can name its own flag instead of the
// YAML path.
namespace pgbranch::control {

// `object` is e.g. `Branch "dev"` (empty: the message starts with the field); `field` may be
// empty (then the message is `object: detail`).
absl::Status FieldError(absl::StatusCode code, const std::string& object, const std::string& field,
                        const std::string& detail, const std::string& reason = "");
// The general form: `message` as given.
absl::Status MakeError(absl::StatusCode code, const std::string& message, const std::string& field,
                       const std::string& detail, const std::string& reason = "");
// An error with no field: `message` is the whole sentence (also used as the detail).
absl::Status ObjectError(absl::StatusCode code, const std::string& message,
                         const std::string& reason = "");

// The field path of an error ("" if it names none).
std::string ErrorField(const absl::Status& s);
// The detail of an error: the payload, else the whole message.
std::string ErrorDetail(const absl::Status& s);
// The reason: the payload, else one derived from the status code ("NotFound", "Invalid",
// "Conflict", "AlreadyExists", "ServiceUnavailable", "Timeout", "InternalError").
std::string ErrorReason(const absl::Status& s);

// `object` in the form the messages use: `Branch "dev"`, `Endpoint "ro"`.
std::string ObjectName(const std::string& kind, const std::string& name);

}  // namespace pgbranch::control
