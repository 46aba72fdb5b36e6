#pragma once
// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11):
// a counter-based generator, so the random number for (sequence, position) is a pure
// function of the seed and that counter, whatever the batch holds.
#include <cstdint>

#include "reference/numeric/hd.h"

namespace kvfid::engine::num {

struct Philox4x32 {
  std::uint32_t v[4];
};

KVFID_HD void mul_hi_lo(std::uint32_t a, std::uint32_t b, std::uint32_t& hi, std::uint32_t& lo) {
  const std::uint64_t p = std::uint64_t(a) * b;
  hi = std::uint32_t(p >> 32);
  lo = std::uint32_t(p);
}

KVFID_HD Philox4x32 philox4x32_10(Philox4x32 ctr, std::uint32_t key0, std::uint32_t key1) {
  constexpr std::uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr std::uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;  // Weyl key increments
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key0 += kW0;
      key1 += kW1;
    }
    std::uint32_t hi0, lo0, hi1, lo1;
    mul_hi_lo(kM0, ctr.v[0], hi0, lo0);
    mul_hi_lo(kM1, ctr.v[2], hi1, lo1);
    ctr = {{hi1 ^ ctr.v[1] ^ key0, lo1, hi0 ^ ctr.v[3] ^ key1, lo0}};
  }
  return ctr;
}

// A uniform float in [0, 1) with 24 random bits (exactly representable), for the
// sample at (sequence, position) under seed.
KVFID_HD float philox_uniform(std::uint64_t seed, std::uint64_t sequence, std::uint64_t position) {
  const Philox4x32 ctr{{std::uint32_t(sequence), std::uint32_t(sequence >> 32), std::uint32_t(position),
                        std::uint32_t(position >> 32)}};
  const Philox4x32 r = philox4x32_10(ctr, std::uint32_t(seed), std::uint32_t(seed >> 32));
  return float(r.v[0] >> 8) * 5.9604644775390625e-8f;  // 2^-24
}

}  // namespace kvfid::engine::num
