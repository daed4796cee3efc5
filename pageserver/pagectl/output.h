#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/message.h"

// Output of pagectl's read commands: aligned tables for people, JSON for scripts.
namespace pgbranch::pagectl {

enum class OutputFormat { kTable, kJson };

// A table printed with columns padded to their widest cell.
class Table {
 public:
  explicit Table(std::vector<std::string> headers);

  void AddRow(std::vector<std::string> cells);
  void Print(std::ostream& out) const;

 private:
  std::vector<std::vector<std::string>> rows_;  // rows_[0] holds the headers
};

// "0 B", "512 B", "12.3 MiB", "1.5 GiB".
std::string HumanBytes(uint64_t bytes);
// A byte rate: "12.3 MiB/s".
std::string HumanRate(double bytes_per_second);
// RFC 3339 in UTC with second precision; "-" for 0 (unset).
std::string FormatMicros(int64_t micros);
// A protobuf message as JSON with the .proto field names and every field present. 64-bit
// integers are JSON strings, as the proto3 JSON mapping prescribes.
absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message);
// `s` as a JSON string literal, quotes included.
std::string JsonQuote(const std::string& s);

}  // namespace pgbranch::pagectl
