#pragma once

#include <cstddef>
#include <cstdint>

// CRC-32 with zlib's polynomial (0x04C11DB7, bit-reflected, pre- and post-inverted): always the
// value zlib's crc32_z computes, which every stored checksum (log records, layer files) was
// written with, so switching implementations never changes a byte on disk.
//
// On x86-64 CPUs with PCLMULQDQ and SSE4.1, runs of 64 bytes or more are folded 4x128 bits at a
// time with carry-less multiplication and reduced to 32 bits with Barrett's method; the tail that
// is not a multiple of 16 bytes, inputs under 64 bytes and other CPUs use zlib's tables. Thread
// safe; the CPU check runs once.
namespace pgbranch {

// `crc` continued by `n` bytes at `data`: Crc32Update(Crc32Update(0, A), B) == Crc32Update(0, AB).
// Like zlib, a null `data` yields 0.
uint32_t Crc32Update(uint32_t crc, const void* data, size_t n);

// "pclmul" or "zlib": what Crc32Update uses for long inputs on this CPU (after any forcing).
const char* Crc32Implementation();

// Tests and benchmarks: true makes Crc32Update use zlib for every length; false restores the
// detected implementation.
void Crc32ForceZlibForTesting(bool force);

// The folding constants, exposed so a test can derive each from the polynomial. Each k is
// reflect32(x^n mod P) << 1 (a 33-bit value); `barrett_p` is P bit-reflected over 33 bits and
// `barrett_mu` floor(x^64 / P) bit-reflected over 33 bits.
struct Crc32FoldConstants {
  uint64_t k_512_plus_32, k_512_minus_32;  // fold one of four lanes across 4 x 128 bits
  uint64_t k_128_plus_32, k_128_minus_32;  // fold across 128 bits
  uint64_t k_64;                           // 64 bits -> 32 bits ahead of Barrett
  uint64_t barrett_p, barrett_mu;
};
const Crc32FoldConstants& Crc32Constants();

}  // namespace pgbranch
