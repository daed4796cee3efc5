#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"

// Controller API errors carry the YAML path of the offending field ("spec.parent") and the
// reason without the object/field prefix ("branch \"nope\" does not exist"). A command the user
// typed reports them under its own flag names: "--parent: branch \"nope\" does not exist".
namespace pgbranch::cli {

// `status` with the API error's field and detail attached (what ApiClient does with a reply).
absl::Status WithApiErrorFields(absl::Status status, std::string_view field,
                                std::string_view detail);
std::string ApiErrorField(const absl::Status& status);
std::string ApiErrorDetail(const absl::Status& status);

// The CLI flag for a manifest field ("spec.lsn" -> "--lsn"); "" when no flag sets it.
std::string FlagForField(std::string_view field);

// The status reworded as "--flag: detail" when its field maps to a flag; unchanged otherwise.
absl::Status WithFlagNames(const absl::Status& status);

}  // namespace pgbranch::cli
