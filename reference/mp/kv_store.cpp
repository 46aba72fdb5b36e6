#include "reference/mp/kv_store.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "reference/formats/minifloat.h"
#include "reference/calibration/kv_policy_fit.h"
#include "reference/formats/quant/registry.h"
#include "reference/formats/quant/row_blocks.h"
#include "reference/golden/taps.h"
#include "reference/mp/enclosure.h"

namespace kvfid::ref {

namespace {

// x rounded toward zero to float64, its last bit set when that was inexact: rounding
// this once more to any format with at most 51 significand bits gives the correct
// rounding of x itself (round-to-odd, Boldo and Melquiond).
double round_to_odd_double(mpfr_srcptr x) {
  double d = mpfr_get_d(x, MPFR_RNDZ);
  if (mpfr_cmp_d(x, d) != 0) {
    std::uint64_t bits;
    std::memcpy(&bits, &d, 8);
    bits |= 1;
    std::memcpy(&d, &bits, 8);
  }
  return d;
}

float rn32(mpfr_srcptr x) { return float(round_to_odd_double(x)); }  // double -> float rounds to nearest even
double rn16(mpfr_srcptr x) { return minifloat_round(round_to_odd_double(x), kFp16); }

// Encodes one block from `in` ([block], FP32) and writes the exact decoding of its
// first `real` elements into `cold` at the flat indices first, first + stride, ....
void encode_block(const quant::FormatInfo& f, const std::vector<float>& in, int real, std::size_t first,
                  std::size_t stride, const quant::CodecParams& params, MpArray& cold) {
  std::vector<std::uint8_t> code(std::size_t(f.bytes));
  f.encode(in.data(), code.data(), params);
  for (int i = 0; i < real; ++i)
    mpfr_set_d(cold[first + i * stride], f.decode_exact(code.data(), i, params), MPFR_RNDN);  // exact: float64 at >= 53 bits
}

// cold: blocks along each token's row (along_tokens false; a last block past kv_dim
// padded as quant/row_blocks.h rules, the engine's rule) or, per channel, along groups
// of `block` tokens (KIVI keys; the last incomplete group has no cold form). A block's
// static scale is its first element's head's.
MpArray cold_form(const MpArray& exact, const quant::KvSlot& slot, bool along_tokens, int tokens, int kv_dim,
                  int head_dim, mpfr_prec_t precision) {
  const quant::FormatInfo& f = quant::all_formats()[slot.format];
  std::vector<float> x(exact.size());  // [tokens, kv_dim]
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = rn32(exact[i]);
  MpArray cold(exact.size(), precision);
  std::vector<float> in(std::size_t(f.block));  // [block]
  if (along_tokens) {
    for (int g = 0; g < tokens / f.block; ++g)
      for (int c = 0; c < kv_dim; ++c) {
        const std::size_t first = std::size_t(g) * f.block * kv_dim + c;
        for (int i = 0; i < f.block; ++i) in[i] = x[first + std::size_t(i) * kv_dim];
        encode_block(f, in, f.block, first, kv_dim, {slot.scales[c / head_dim]}, cold);
      }
  } else {
    for (int t = 0; t < tokens; ++t)
      for (int b = 0; b < quant::row_block_count(kv_dim, f.block); ++b) {
        const std::size_t row = std::size_t(t) * kv_dim;
        quant::gather_padded_block(x.data() + row, kv_dim, f.block, b, in.data());
        encode_block(f, in, quant::real_elements(kv_dim, f.block, b), row + std::size_t(b) * f.block, 1,
                     {slot.scales[b * f.block / head_dim]}, cold);
      }
  }
  return cold;
}

template <typename F>
bool same_bits(F a, F b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

// Throws UndecidedRounding unless both ends of every ball round to one RN32 value (and
// one RN16 value when `hot`).
void require_decided(const MpArray& x, const MpArray* radii, bool hot, const std::string& tap) {
  if (!radii) return;
  MpArray ends(2, x.precision());
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (mpfr_zero_p((*radii)[i])) continue;
    mpfr_sub(ends[0], x[i], (*radii)[i], MPFR_RNDD);  // below the ball's lower end
    mpfr_add(ends[1], x[i], (*radii)[i], MPFR_RNDU);  // above its upper end
    // Compared bit for bit: ends rounding to zeros of opposite signs leave the stored sign undecided.
    const bool decided = mpfr_number_p(ends[0]) && mpfr_number_p(ends[1]) && same_bits(rn32(ends[0]), rn32(ends[1])) &&
                         (!hot || same_bits(rn16(ends[0]), rn16(ends[1])));
    if (!decided) throw UndecidedRounding(tap, std::int64_t(i));
  }
}

MpArray hot_form(const MpArray& exact, mpfr_prec_t precision) {
  MpArray hot(exact.size(), precision);
  for (std::size_t i = 0; i < exact.size(); ++i) mpfr_set_d(hot[i], rn16(exact[i]), MPFR_RNDN);  // exact
  return hot;
}

MpArray own(const MpArray& cold, const MpArray& hot, int hot_window, int group, int tokens, int kv_dim) {
  MpArray r(cold.size(), cold.precision());
  for (int t = 0; t < tokens; ++t) {
    const MpArray& from = t < quant::cold_end(t, hot_window, group) ? cold : hot;
    for (int i = 0; i < kv_dim; ++i) mpfr_set(r[std::size_t(t) * kv_dim + i], from[std::size_t(t) * kv_dim + i], MPFR_RNDN);
  }
  return r;
}

}  // namespace

MpKvStore store_kv(const MpArray& k, const MpArray& v, const quant::KvPolicy& policy, int layer, int tokens,
                   const ModelConfig& config, const MpArray* k_radii, const MpArray* v_radii) {
  const bool hot = policy.hot_window > 0 || policy.kivi;
  require_decided(k, k_radii, hot, tap_layer_name(layer, "k"));
  require_decided(v, v_radii, hot, tap_layer_name(layer, "v"));
  const mpfr_prec_t precision = std::max<mpfr_prec_t>(53, std::max(k.precision(), v.precision()));
  const int kv_dim = config.kv_dim();
  MpKvStore s;
  s.hot_window = policy.hot_window;
  s.k_group = quant::kivi_group(policy, layer);
  s.k_cold = cold_form(k, policy.k[layer], policy.kivi, tokens, kv_dim, config.head_dim, precision);
  s.v_cold = cold_form(v, policy.v[layer], false, tokens, kv_dim, config.head_dim, precision);
  if (hot) {
    s.k_hot = hot_form(k, precision);
    s.v_hot = hot_form(v, precision);
  }
  return s;
}

MpArray store_latent(const MpArray& rows, const MpArray* radii, const quant::KvPolicy& policy, int layer, int tokens,
                     int width) {
  quant::require_latent_policy(policy, "KV policy");
  const quant::KvSlot& k = policy.k[std::size_t(layer)];
  require_decided(rows, radii, false, tap_layer_name(layer, "latent"));
  return cold_form(rows, k, false, tokens, width, width, std::max<mpfr_prec_t>(53, rows.precision()));
}

MpArray own_keys(const MpKvStore& s, int tokens, int kv_dim) {
  const AttentionKv kv = s.view();
  return own(kv.k_cold, kv.k_hot, s.hot_window, s.k_group, tokens, kv_dim);
}

MpArray own_values(const MpKvStore& s, int tokens, int kv_dim) {
  const AttentionKv kv = s.view();
  return own(kv.v_cold, kv.v_hot, s.hot_window, 0, tokens, kv_dim);
}

}  // namespace kvfid::ref
