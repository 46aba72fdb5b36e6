#pragma once
// 64-bit arithmetic on sizes read from files (shapes, dims, offsets): a product or sum
// that does not fit is reported, never wrapped, so a hostile header cannot turn an
// enormous size into a small one.
#include <cstdint>
#include <optional>

namespace kvfid::ref {

inline std::optional<std::int64_t> checked_mul(std::int64_t a, std::int64_t b) {
  std::int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

inline std::optional<std::int64_t> checked_add(std::int64_t a, std::int64_t b) {
  std::int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// Chained: an absent operand (an earlier overflow) stays absent.
inline std::optional<std::int64_t> checked_mul(std::optional<std::int64_t> a, std::optional<std::int64_t> b) {
  return a && b ? checked_mul(*a, *b) : std::nullopt;
}
inline std::optional<std::int64_t> checked_add(std::optional<std::int64_t> a, std::optional<std::int64_t> b) {
  return a && b ? checked_add(*a, *b) : std::nullopt;
}

}  // namespace kvfid::ref
