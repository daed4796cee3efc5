#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/coding.h"

// Protocol-buffer wire format, for the few messages encoded by hand on hot paths (the commit
// channel's frame, the pageserver's commit log record); tests compare their bytes with
// protobuf's. Callers leave out what proto3 does not write (zero numbers, empty strings).
namespace pgbranch {

inline constexpr char kProtoVarint = 0, kProtoLen = 2;  // wire types

inline constexpr char ProtoTag(int field, char wire_type) {
  return static_cast<char>(field << 3 | wire_type);
}

// The bytes of a length-delimited field of `len` bytes: tag, length, bytes.
inline size_t ProtoLenFieldSize(size_t len) { return 1 + VarintLength(len) + len; }

// A length-delimited field's tag and length (its bytes follow).
inline void PutProtoLenHeader(std::string* dst, int field, size_t len) {
  dst->push_back(ProtoTag(field, kProtoLen));
  PutVarint64(dst, len);
}

inline void PutProtoLenField(std::string* dst, int field, std::string_view bytes) {
  PutProtoLenHeader(dst, field, bytes.size());
  dst->append(bytes);
}

inline void PutProtoVarintField(std::string* dst, int field, uint64_t v) {
  dst->push_back(ProtoTag(field, kProtoVarint));
  PutVarint64(dst, v);
}

}  // namespace pgbranch
