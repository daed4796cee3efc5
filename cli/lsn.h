#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

// LSNs in two spellings: PostgreSQL's pg_lsn form "X/Y" (two hexadecimal halves) and the decimal
// uint64 of pgbranch's JSON and pagectl. Note: pgbranch LSNs number a timeline's commits at the
// pageserver (docs/sizes-and-lsns.md); they are not PostgreSQL WAL positions, only written alike.
namespace pgbranch::cli {

// "16/B374D848" (PostgreSQL's form) or "94288500808" (decimal). INVALID_ARGUMENT with a sentence
// that shows both forms otherwise.
absl::StatusOr<uint64_t> ParseLsn(std::string_view text);

// PostgreSQL's form: "16/B374D848" (upper-case hex halves, no leading zeros).
std::string FormatLsn(uint64_t lsn);

}  // namespace pgbranch::cli
