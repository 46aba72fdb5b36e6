#pragma once
// TurboQuant's inner-product quantizer (TurboQuant-prod, Zandieh et al. 2025) for the
// KV cache: tqp2_32 ... tqp4_128, b = 2..4 bits per element over blocks of B = 32 or
// 128. The MSE quantizer (turbo_mse.h) shrinks: for a Lloyd-Max quantizer E<x, x^> =
// E||x^||^2 = (1 - D) ||x||^2, so a query's inner product with the decoded key is biased
// toward 0 by the relative distortion D. TurboQuant-prod spends b - 1 bits per element
// on the MSE quantizer and one on a QJL sketch (Zandieh et al., QJL 2024) of the
// residual, whose dequantization is unbiased for inner products in expectation over a
// Gaussian sketch matrix. Encoding of a block x (NaN elements count as 0, as in
// turbo_mse.h):
//   1. The (b-1)-bit TurboMse encoding of x: its n16 and codes; m_i = its FP32 decode,
//      fl32(n16 L(code_i)).
//   2. The residual r_i = fl32(x_i - m_i); gamma = sqrt(sum r_i^2) in FP32 (s = fma(r_i,
//      r_i, s) for i = 0, 1, ... from +0, then the correctly rounded sqrt), stored as
//      g16 = fp16(gamma), saturated at 65504 (see Out of domain).
//   3. The sketch: y_j = sum_i S_ji r_i for j = 0 .. B-1, in FP32 from y = +0 adding
//      S_ji r_i for i = 0, 1, ... in order (S_ji = +-1: the sign flip is exact, each
//      addition rounds once); z_j = -1 when y_j < 0, else +1 (so +0, and an exact-zero
//      sum, which round to nearest makes +0, count as +).
//   S is a fixed B x B Rademacher (+-1) matrix from an integer hash, 64 entries of a
//   column per hash: S_ji = -1 exactly when bit j % 64 of
//   splitmix64(kSketchSeed + i W + j / 64) is set, W = ceil(B / 64) words per column
//   (B = 32 uses bits 0..31 of one word), splitmix64 being Steele, Lea and Flood's
//   SplitMix64 finalizer (z += 0x9E3779B97F4A7C15; z = (z ^ z >> 30) 0xBF58476D1CE4E5B9;
//   z = (z ^ z >> 27) 0x94D049BB133111EB; z ^ z >> 31, mod 2^64; its output bits are
//   those of the SplitMix64 generator, which passes BigCrush) and kSketchSeed =
//   0x243F6A8885A308D3 (the first hexadecimal digits of pi's fraction: a constant
//   chosen for nothing). Columns by words make decoding cheap: element i needs column
//   i only, n_i = B - 2 popcount(column_i XOR z) from W hashes. turbo_prod_test.cpp
//   recomputes S, checks every entry is +-1, about half each, and the rows distinct.
// Decoding element i: n_i = sum_j S_ji z_j (an exact integer in [-B, B]) and
//   x^_i = fl32(m_i + fl32(g16 * fl32(kappa * n_i))),  kappa = fl32(sqrt(pi / 2) / B),
// evaluated in that order: QJL's dequantizer sqrt(pi/2)/B gamma S^T z added to the MSE
// decode. The format's value IS this FP32 evaluation (decode_exact returns it widened
// to float64): every step is one correctly rounded IEEE operation, so host and device
// compute the same bits, and decode equals float(decode_exact) trivially. kappa =
// fl32(sqrt(pi/2)) 2^-log2(B) exactly (B a power of two; 0x1.40d932p+0 2^-log2(B)).
//
// Bias. For a Gaussian S, E_S[(sqrt(pi/2)/B) ||r|| S^T z] = r exactly, so <q, x^> is
// an unbiased estimate of <q, x> for every q. Here S is fixed and +-1, for which
// E[s_i sign<s, r>] is not proportional to r_i (large residual coordinates weigh more),
// so a bias remains. Measured on random unit keys and queries at correlation 0.8
// (relative bias of <q, x^>): tqp2/3/4 +0.86 / +0.59 / +0.23 % at B = 32 and +0.18 /
// +0.17 / +0.10 % at B = 128 (+-0.01..0.04 %; 200,000 and 40,000 pairs), against the
// MSE quantizer's -10.6 / -2.8 / -0.7 % and -11.5 / -3.3 / -0.9 %; a fresh Gaussian
// matrix per pair measured |bias| < 0.03 %. The +-1 matrix keeps decoding a popcount;
// turbo_prod_test.cpp asserts the reduction, which holds, not unbiasedness. The price is variance: the sketch adds about
// (pi/2 - 1) ||r||^2 ||q||^2 / B to each <q, x^>'s error, where the MSE quantizer adds
// nothing but its deterministic error.
//
// Layout (little-endian): FP16 n16 (2 bytes), FP16 g16 (2 bytes), the (b-1)-bit MSE
// codes exactly as TurboMse packs them after its norm ((b-1) B / 8 bytes), then the B
// sketch bits, bit j (1: z_j = -1) in bit j % 8 of byte j / 8 of that field. kBytes =
// 4 + b B / 8: (32 + b B) / B bits per element with the two norms, i.e. b + 1 at
// B = 32 and b + 1/4 at B = 128 (tqp2_32 = 3, tqp3_32 = 4, tqp4_32 = 5, tqp2_128 =
// 2.25, tqp3_128 = 3.25, tqp4_128 = 4.25). A zero block is all zero bytes.
//
// Error bound (error_bound, replaying the encoding of x). With m_i = fl32(n16 L), q_i
// = fl32(g16 fl32(kappa n_i)) and x^_i = fl32(m_i + q_i):
//   x_i - x^_i = (x_i - n16 L) + (n16 L - m_i) - q_i + (m_i + q_i - x^_i), so
//   |x_i - x^_i| <= TurboMse's bound on |x_i - n16 L| (the nearest-level distance plus
//                   the division's rounding, turbo_mse.h)
//                 + 2^-24 |n16 L| + 2^-150 (the FP32 product m_i)
//                 + |q_i| (the sketch term, recomputed from x)
//                 + 2^-24 (|m_i| + |q_i|) (the FP32 sum).
// The residual's own roundings (r_i, gamma, the y_j) need no term: they only decide
// g16 and the z_j, and q_i is recomputed from those. The bound cannot use the sketch's
// cancellation (q_i estimates r_i, but per element only in expectation): it is the
// triangle inequality, reached where q_i and the residual have opposite signs. It is
// loose where they agree, and always larger than the (b-1)-bit MSE format's bound:
// per element, the sketch adds error; its gain is the unbiasedness of inner products.
// n16 = 0: the block decodes to zeros (m = 0, g16 = 0) and the bound is |x_i|; n16 =
// +Inf: +Inf.
//
// Not idempotent, not repeat-invariant, for TurboMse's reasons (turbo_mse.h), and not
// exhaustive (the codes depend on the whole block).
//
// Out of domain: a NaN element counts as 0 everywhere (norm, code, residual, sketch),
// so the block is byte for byte the block with 0 in its place. A block whose norm
// reaches 65520 stores n16 = +Inf (TurboMse) and decodes to +-Inf: its residuals are
// infinite, g16 saturates at 65504 (so g16 kappa n_i stays finite and never meets an
// Inf times 0), and x^_i = m_i + finite = +-Inf. A residual norm of 65520 or more
// under a finite n16 (possible: ||r|| can exceed ||x||, e.g. for a one-hot block at
// b = 2, whose zeros all take a level +-L_0) saturates the same way, and the bound,
// which recomputes q_i, stays sound.
#include <cmath>
#include <cstdint>
#include <limits>

#include "reference/formats/minifloat.h"
#include "reference/formats/quant/codec.h"
#include "reference/formats/quant/turbo_mse.h"
#include "reference/numeric/convert.h"
#include "reference/numeric/ieee.h"

namespace kvfid::ref::quant {

template <int kBitsV, int kBlockSize>
struct TurboProd {
  static constexpr int kBits = kBitsV;
  static_assert(kBits >= 2 && kBits <= 4);
  using Mse = TurboMseUniform<kBits - 1, kBlockSize>;  // the b-1 bit MSE stage
  static constexpr int kBlock = kBlockSize;
  static_assert(kBlock % 8 == 0 && (kBlock & (kBlock - 1)) == 0);
  static constexpr int kMseCodeBytes = Mse::kBytes - 2;       // (b - 1) B / 8
  static constexpr int kSketchOffset = 4 + kMseCodeBytes;     // byte of sketch bit 0
  static constexpr int kBytes = 4 + kBlock * kBits / 8;
  static_assert(kSketchOffset + kBlock / 8 == kBytes);
  static constexpr bool kExhaustive = false;
  static constexpr bool kIdempotent = false;
  static constexpr bool kRepeatInvariant = false;

  static constexpr std::uint64_t kSketchSeed = 0x243F6A8885A308D3ull;
  // fl32(sqrt(pi / 2)) / B, exact (B a power of two).
  static constexpr float kKappa = 0x1.40d932p+0f / float(kBlock);
  static constexpr std::uint16_t kF16Max = 0x7BFF;  // 65504

  static constexpr int kWords = (kBlock + 63) / 64;  // W: 64-bit words per column of S
  static constexpr std::uint64_t kRowMask = kBlock >= 64 ? ~0ull : (1ull << kBlock) - 1;

  KVFID_HD static std::uint64_t splitmix64(std::uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Word w of column i of S: bit k set when S_(64 w + k) i = -1 (bits past B cleared).
  KVFID_HD static std::uint64_t sketch_column(int i, int w) {
    return splitmix64(kSketchSeed + std::uint64_t(i) * kWords + std::uint64_t(w)) & kRowMask;
  }
  // S_ji = -1 (true) or +1 (false).
  KVFID_HD static bool sketch_negative(int j, int i) { return (sketch_column(i, j / 64) >> (j % 64)) & 1; }

  KVFID_HD static void encode(const float* x, std::uint8_t* block, const CodecParams& p) {
    std::uint8_t mse[Mse::kBytes];
    Mse::encode(x, mse, p);
    block[0] = mse[0];
    block[1] = mse[1];
    for (int k = 0; k < kMseCodeBytes; ++k) block[4 + k] = mse[2 + k];
    float r[kBlock];
    float sum = 0.0f;
    const float n = num::f16_to_f32(load_u16(mse));
    for (int i = 0; i < kBlock; ++i) {
      r[i] = Mse::zero_if_nan(x[i]) - n * Mse::level_at(i, Mse::get(mse + 2, i));
      sum = num::fma(r[i], r[i], sum);
    }
    std::uint16_t g16 = num::f32_to_f16(num::sqrt(sum));
    if (g16 == 0x7C00) g16 = kF16Max;
    store_u16(block + 2, g16);
    // y_j for all j at once, i outermost: each y_j still adds its terms in i order.
    float y[kBlock];
    for (int j = 0; j < kBlock; ++j) y[j] = 0.0f;
    // y_j - r_i is y_j + (-r_i) exactly (IEEE), so the sign flip goes on r_i's sign bit.
    for (int i = 0; i < kBlock; ++i) {
      const std::uint32_t ri = num::bits_of(r[i]);
      for (int w = 0; w < kWords; ++w) {
        const std::uint64_t column = sketch_column(i, w);
        for (int k = 0; k < 64 && 64 * w + k < kBlock; ++k)
          y[64 * w + k] += num::float_of(ri ^ (std::uint32_t(column >> k) << 31));
      }
    }
    std::uint8_t* z = block + kSketchOffset;
    for (int k = 0; k < kBlock / 8; ++k) z[k] = 0;
    for (int j = 0; j < kBlock; ++j)
      if (y[j] < 0.0f) z[j / 8] = std::uint8_t(z[j / 8] | (1u << (j % 8)));
  }

  KVFID_HD static float decode(const std::uint8_t* block, int i, const CodecParams&) {
    const float m = mse_value(block, i);
    const float g = num::f16_to_f32(load_u16(block + 2));
    return m + g * (kKappa * float(sketch_count(block, i)));
  }

  // The format's value is decode's FP32 evaluation (see above).
  static double decode_exact(const std::uint8_t* block, int i, const CodecParams& p) {
    return double(decode(block, i, p));
  }

  // See "Error bound" above.
  static double error_bound(const float* x, int i, const CodecParams& p) {
    const double mse = Mse::error_bound(x, i, p);
    if (!(mse < std::numeric_limits<double>::infinity())) return std::numeric_limits<double>::infinity();
    std::uint8_t block[kBytes];
    encode(x, block, p);
    const double level_value = f16_to_double(load_u16(block)) * double(Mse::level_at(i, Mse::get(block + 4, i)));
    const double m = mse_value(block, i);
    const double q = num::f16_to_f32(load_u16(block + 2)) * (kKappa * float(sketch_count(block, i)));
    return mse + 0x1p-24 * std::fabs(level_value) + 0x1p-150 + std::fabs(q) + 0x1p-24 * (std::fabs(m) + std::fabs(q));
  }

  // m_i: the MSE stage's FP32 decode, n16 * L(code_i).
  KVFID_HD static float mse_value(const std::uint8_t* block, int i) {
    return num::f16_to_f32(load_u16(block)) * Mse::level_at(i, Mse::get(block + 4, i));
  }

  // n_i = sum_j S_ji z_j = B - 2 (the number of j where S_ji and z_j differ).
  KVFID_HD static int sketch_count(const std::uint8_t* block, int i) {
    const std::uint8_t* z = block + kSketchOffset;
    int differ = 0;
    for (int w = 0; w < kWords; ++w) {
      std::uint64_t bits = 0;
      for (int k = 0; k < 8 && 8 * (8 * w + k) < kBlock; ++k) bits |= std::uint64_t(z[8 * w + k]) << (8 * k);
      differ += popcount64(bits ^ sketch_column(i, w));
    }
    return kBlock - 2 * differ;
  }

 private:
  KVFID_HD static int popcount64(std::uint64_t v) {  // SWAR: integer operations only, host and device
    v = v - ((v >> 1) & 0x5555555555555555ull);
    v = (v & 0x3333333333333333ull) + ((v >> 2) & 0x3333333333333333ull);
    v = (v + (v >> 4)) & 0x0F0F0F0F0F0F0F0Full;
    return int((v * 0x0101010101010101ull) >> 56);
  }
};

struct Tqp2_32 : TurboProd<2, 32> {
  static constexpr const char* kName = "tqp2_32";
};
struct Tqp3_32 : TurboProd<3, 32> {
  static constexpr const char* kName = "tqp3_32";
};
struct Tqp4_32 : TurboProd<4, 32> {
  static constexpr const char* kName = "tqp4_32";
};
struct Tqp2_128 : TurboProd<2, 128> {
  static constexpr const char* kName = "tqp2_128";
};
struct Tqp3_128 : TurboProd<3, 128> {
  static constexpr const char* kName = "tqp3_128";
};
struct Tqp4_128 : TurboProd<4, 128> {
  static constexpr const char* kName = "tqp4_128";
};

}  // namespace kvfid::ref::quant
