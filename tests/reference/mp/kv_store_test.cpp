// The reference's KV cache under a policy: cold = decode_exact(encode(RN32(x))), hot =
// RN16(x), KIVI key groups along tokens, the taps' own-key rule, and the attention
// reading key j for query t from the form cold_end chooses.
#include "reference/mp/kv_store.h"

#include <algorithm>
#include <tuple>

#include <gtest/gtest.h>

#include "reference/formats/minifloat.h"
#include "reference/calibration/kv_policy_fit.h"
#include "reference/formats/quant/registry.h"
#include "tests/common/test_env.h"
#include "tests/reference/mp/mp_test_util.h"

namespace kvfid::ref {
namespace {

constexpr mpfr_prec_t kPrecision = 128;

// kv_dim 32: one q8_0 block per token row.
ModelConfig config() {
  ModelConfig c = test::tiny_config();
  c.head_dim = 16, c.dim = 64;
  return c;
}

// Values in [-2, 2) that are not FP32 numbers: a 20-bit random value plus an odd
// multiple of 2^-40 (far from any FP16 or FP32 tie, so rounding them through float64
// below is exact enough to serve as the expectation).
MpArray exact_values(std::size_t n, std::uint64_t seed) {
  MpArray a = test::random_mp_array(n, kPrecision, seed);
  for (std::size_t i = 0; i < n; ++i) {
    MpArray tiny(1, kPrecision);
    mpfr_set_si_2exp(tiny[0], long(2 * (i % 97) + 1), -40, MPFR_RNDN);
    mpfr_add(a[i], a[i], tiny[0], MPFR_RNDN);  // exact at 128 bits
  }
  return a;
}

double value(const MpArray& a, std::size_t i) { return mpfr_get_d(a[i], MPFR_RNDN); }

// What cold holds for the row-blocked element i of a [tokens, kv_dim] array.
std::vector<double> row_blocked(const MpArray& x, const quant::FormatInfo& f) {
  std::vector<double> r(x.size());
  std::vector<float> in(f.block);
  std::vector<std::uint8_t> code(f.bytes);
  for (std::size_t b = 0; b < x.size() / f.block; ++b) {
    for (int i = 0; i < f.block; ++i) in[i] = mpfr_get_flt(x[b * f.block + i], MPFR_RNDN);
    f.encode(in.data(), code.data(), {});
    for (int i = 0; i < f.block; ++i) r[b * f.block + i] = f.decode_exact(code.data(), i, {});
  }
  return r;
}

TEST(KvStore, ColdIsTheExactDecodingOfTheFp32RoundingAndHotIsFp16) {
  SCOPED_TRACE(test::seed_trace());
  ExponentRangeScope range;
  const ModelConfig c = config();
  const int T = 5;
  const MpArray k = exact_values(std::size_t(T) * c.kv_dim(), test::test_seed());
  const MpArray v = exact_values(std::size_t(T) * c.kv_dim(), test::test_seed() + 1);
  const quant::KvPolicy policy = quant::resolve_kv_policy(quant::parse_kv_policy_spec("k=q8_0+v=bf16+hot=2", "test"), {}, c);
  const MpKvStore s = store_kv(k, v, policy, 0, T, c);
  const std::vector<double> k_cold = row_blocked(k, quant::format_by_name("q8_0", "test"));
  int moved = 0;
  for (std::size_t i = 0; i < k.size(); ++i) {
    ASSERT_EQ(value(s.k_cold, i), k_cold[i]) << i;
    ASSERT_EQ(value(s.v_cold, i), round_to_format(double(mpfr_get_flt(v[i], MPFR_RNDN)), FloatFormat::bf16)) << i;
    ASSERT_EQ(value(s.k_hot, i), round_to_format(value(k, i), FloatFormat::f16)) << i;
    ASSERT_EQ(value(s.v_hot, i), round_to_format(value(v, i), FloatFormat::f16)) << i;
    moved += value(s.k_cold, i) != value(s.k_hot, i);
  }
  EXPECT_GT(moved, int(k.size()) / 2);  // the two forms differ: the rule below is observable
  // hot=2: every row's own key is among its 2 most recent, so the taps are hot.
  const MpArray own_k = own_keys(s, T, c.kv_dim());
  for (std::size_t i = 0; i < k.size(); ++i) ASSERT_EQ(value(own_k, i), value(s.k_hot, i)) << i;
}

// kv_dim 40 against blocks of 32 and 64: each row's last block holds its real elements
// followed by copies of the row's last one (row_blocks.h), built here by hand; cold
// holds the exact decoding of the real elements only.
TEST(KvStore, RowsTheBlockDoesNotDivideGetARepeatPaddedLastBlock) {
  SCOPED_TRACE(test::seed_trace());
  ExponentRangeScope range;
  ModelConfig c = config();
  c.head_dim = 20;  // kv_dim 40
  const int T = 3, kvd = c.kv_dim();
  const MpArray k = exact_values(std::size_t(T) * kvd, test::test_seed());
  // V in [1, 5): padding with zeros instead would move int4a's minimum and be seen.
  const MpArray v = [&] {
    MpArray a = exact_values(std::size_t(T) * kvd, test::test_seed() + 1);
    for (std::size_t i = 0; i < a.size(); ++i) mpfr_add_ui(a[i], a[i], 3, MPFR_RNDN);  // exact at 128 bits
    return a;
  }();
  for (const char* spec : {"k=q8_0+v=int4a_32", "k=int4_64+v=q4_0"}) {
    SCOPED_TRACE(spec);
    const quant::KvPolicy policy = quant::resolve_kv_policy(quant::parse_kv_policy_spec(spec, "test"), {}, c);
    const MpKvStore s = store_kv(k, v, policy, 0, T, c);
    for (const auto& [exact, cold, slot] : {std::tuple{&k, &s.k_cold, &policy.k[0]}, std::tuple{&v, &s.v_cold, &policy.v[0]}}) {
      const quant::FormatInfo& f = quant::all_formats()[slot->format];
      std::vector<float> in(std::size_t(f.block));
      std::vector<std::uint8_t> code(std::size_t(f.bytes));
      for (int t = 0; t < T; ++t)
        for (int start = 0; start < kvd; start += f.block) {
          const std::size_t row = std::size_t(t) * kvd;
          for (int i = 0; i < f.block; ++i)
            in[i] = mpfr_get_flt((*exact)[row + std::min(start + i, kvd - 1)], MPFR_RNDN);
          f.encode(in.data(), code.data(), {});
          for (int i = 0; start + i < kvd && i < f.block; ++i)
            ASSERT_EQ(value(*cold, row + start + i), f.decode_exact(code.data(), i, {})) << f.name << " " << t << " " << start + i;
        }
    }
  }
}

TEST(KvStore, WithoutHotWindowNoHotFormAndTapsAreCold) {
  SCOPED_TRACE(test::seed_trace());
  ExponentRangeScope range;
  const ModelConfig c = config();
  const MpArray k = exact_values(3 * std::size_t(c.kv_dim()), test::test_seed());
  const MpKvStore s = store_kv(k, k, quant::resolve_kv_policy(quant::parse_kv_policy_spec("f16", "test"), {}, c), 0, 3, c);
  EXPECT_EQ(s.k_hot.size(), 0u);
  const MpArray own_v = own_values(s, 3, c.kv_dim());
  for (std::size_t i = 0; i < k.size(); ++i)
    ASSERT_EQ(value(own_v, i), round_to_format(double(mpfr_get_flt(k[i], MPFR_RNDN)), FloatFormat::f16));
}

TEST(KvStore, KiviKeysAreEncodedPerChannelOverCompleteGroups) {
  SCOPED_TRACE(test::seed_trace());
  ExponentRangeScope range;
  ModelConfig c = config();
  c.head_dim = 6;  // kv_dim 12: no row blocking of q8_0 possible, KIVI runs along tokens
  const int T = 40, kvd = c.kv_dim();
  const MpArray k = exact_values(std::size_t(T) * kvd, test::test_seed());
  const quant::KvPolicy policy = quant::resolve_kv_policy(quant::parse_kv_policy_spec("k=q8_0+v=f16+kivi", "test"), {}, c);
  const MpKvStore s = store_kv(k, k, policy, 0, T, c);
  EXPECT_EQ(s.k_group, 32);
  const quant::FormatInfo& f = quant::format_by_name("q8_0", "test");
  for (int ch = 0; ch < kvd; ++ch) {
    std::vector<float> in(32);
    std::vector<std::uint8_t> code(f.bytes);
    for (int i = 0; i < 32; ++i) in[i] = mpfr_get_flt(k[std::size_t(i) * kvd + ch], MPFR_RNDN);
    f.encode(in.data(), code.data(), {});
    for (int i = 0; i < 32; ++i) ASSERT_EQ(value(s.k_cold, std::size_t(i) * kvd + ch), f.decode_exact(code.data(), i, {}));
  }
  // Own keys: cold only for token 31, which completes the group; hot elsewhere.
  const MpArray own_k = own_keys(s, T, kvd);
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < kvd; ++i) {
      const std::size_t at = std::size_t(t) * kvd + i;
      ASSERT_EQ(value(own_k, at), value(t == 31 ? s.k_cold : s.k_hot, at)) << t;
    }
}

// Query t's row of the tiered attention equals the plain attention over the keys and
// values it reads, assembled by hand: per key the form cold_end(t, ...) picks.
TEST(KvStore, AttentionReadsTheFormColdEndPicks) {
  SCOPED_TRACE(test::seed_trace());
  ExponentRangeScope range;
  ModelConfig c = config();
  const int T = 40, kvd = c.kv_dim();
  const MpArray q = test::random_mp_array(std::size_t(T) * c.q_dim(), kPrecision, test::test_seed());
  const MpArray k = exact_values(std::size_t(T) * kvd, test::test_seed() + 1);
  const MpArray v = exact_values(std::size_t(T) * kvd, test::test_seed() + 2);
  const MpKvStore s = store_kv(k, v, quant::resolve_kv_policy(quant::parse_kv_policy_spec("q8_0+kivi+hot=5", "test"), {}, c), 0, T, c);
  for (const MpArith& arith : {MpArith::exact(kPrecision), MpArith::ieee(FloatFormat::f32)}) {
    MpArray probs(std::size_t(c.n_heads) * T * T, kPrecision), out(std::size_t(T) * c.q_dim(), kPrecision);
    causal_attention(&probs, out, q, s.view(), T, c, arith, 2);
    for (int t : {3, 31, 33, 39}) {
      const int tokens = t + 1;
      MpArray k_read(std::size_t(tokens) * kvd, s.k_cold.precision()), v_read(std::size_t(tokens) * kvd, s.k_cold.precision());
      for (int j = 0; j < tokens; ++j)
        for (int i = 0; i < kvd; ++i) {
          const std::size_t at = std::size_t(j) * kvd + i;
          mpfr_set(k_read[at], (j < quant::cold_end(t, 5, 32) ? s.k_cold : s.k_hot)[at], MPFR_RNDN);
          mpfr_set(v_read[at], (j < quant::cold_end(t, 5, 0) ? s.v_cold : s.v_hot)[at], MPFR_RNDN);
        }
      MpArray p2(std::size_t(c.n_heads) * tokens * tokens, kPrecision), o2(std::size_t(tokens) * c.q_dim(), kPrecision);
      causal_attention(p2, o2, q, k_read, v_read, tokens, c, arith, 1);
      for (int i = 0; i < c.q_dim(); ++i)
        ASSERT_TRUE(mpfr_equal_p(out[std::size_t(t) * c.q_dim() + i], o2[std::size_t(t) * c.q_dim() + i])) << t << " " << i;
    }
  }
}

}  // namespace
}  // namespace kvfid::ref
