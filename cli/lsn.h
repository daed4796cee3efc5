#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

// LSNs as people meet them: PostgreSQL prints pg_lsn as "X/Y" (two hexadecimal halves, what
// `SELECT pg_current_wal_lsn()` shows); pgbranch's JSON and pagectl print the decimal uint64.
namespace pgbranch::cli {

// "16/B374D848" (PostgreSQL's form) or "94288500808" (decimal). INVALID_ARGUMENT with a sentence
// that shows both forms otherwise.
absl::StatusOr<uint64_t> ParseLsn(std::string_view text);

// PostgreSQL's form: "16/B374D848" (upper-case hex halves, no leading zeros).
std::string FormatLsn(uint64_t lsn);

}  // namespace pgbranch::cli
