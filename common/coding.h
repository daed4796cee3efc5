#pragma once

#include <cstdint>
#include <string>
#include <string_view>

// Byte encodings shared by the log, the layer files and the filesystem key layout.
// Fixed-width integers come in two flavours: little-endian for file formats (fast, not ordered)
// and big-endian for keys (so that byte order equals numeric order).
namespace pgbranch {

void PutFixed32(std::string* dst, uint32_t v);
void PutFixed64(std::string* dst, uint64_t v);
void PutVarint64(std::string* dst, uint64_t v);
// The bytes PutVarint64 writes for `v` (1..10).
size_t VarintLength(uint64_t v);
// A varint length followed by the bytes.
void PutLengthPrefixed(std::string* dst, std::string_view s);
void PutBigEndian64(std::string* dst, uint64_t v);

uint32_t DecodeFixed32(const char* p);
uint64_t DecodeFixed64(const char* p);
uint64_t DecodeBigEndian64(const char* p);

// Decoders consume from the front of `in`; they return false on truncated or malformed input.
bool GetFixed32(std::string_view* in, uint32_t* v);
bool GetFixed64(std::string_view* in, uint64_t* v);
bool GetVarint64(std::string_view* in, uint64_t* v);
bool GetLengthPrefixed(std::string_view* in, std::string_view* s);

// CRC-32 (zlib polynomial) of `data`, optionally continuing from `init`.
uint32_t Crc32(std::string_view data, uint32_t init = 0);
// The Crc32 of A followed by B from crc_a = Crc32(A, init) and crc_b = Crc32(B) (init 0): how a
// checksum over bytes whose parts were already checksummed costs O(log len_b), not a pass over B.
uint32_t Crc32Combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

}  // namespace pgbranch
