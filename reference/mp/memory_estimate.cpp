#include "reference/mp/memory_estimate.h"

#include <algorithm>

#include "reference/mp/enclosure.h"
#include "reference/mp/mp_weights.h"

namespace kvfid::ref {

namespace {

std::uint64_t tap_values(const ForwardShape& s) {
  std::uint64_t n = 0;
  for (const TapSpec& spec : tap_specs(s.config, s.tokens, s.taps)) {
    std::uint64_t numel = 1;
    for (std::int64_t d : spec.shape) numel *= std::uint64_t(d);
    n += numel;
  }
  return n;
}

}  // namespace

std::uint64_t mp_number_bytes(mpfr_prec_t precision) {
  return sizeof(__mpfr_struct) + std::uint64_t(mpfr_custom_get_size(precision));
}

int golden_logits_block(const ModelConfig& c, int tokens, mpfr_prec_t precision) {
  const std::uint64_t per_token = std::uint64_t(c.vocab) * mp_number_bytes(precision);
  return int(std::clamp<std::uint64_t>(kGoldenLogitsBlockBytes / per_token, 1, std::uint64_t(std::max(tokens, 1))));
}

namespace {

// What a forward holds at `precision` besides its kept taps, with the logits of
// `logit_tokens` tokens (and their normed rows) at once.
std::uint64_t forward_working_bytes(const ForwardShape& s, mpfr_prec_t precision, std::uint64_t logit_tokens) {
  const ModelConfig& c = s.config;
  const std::uint64_t T = std::uint64_t(s.tokens), L = std::uint64_t(c.n_layers), H = std::uint64_t(c.n_heads);
  const std::uint64_t dim = std::uint64_t(c.dim), q = std::uint64_t(c.q_dim()), kv = std::uint64_t(c.kv_dim());
  const std::uint64_t hidden = std::uint64_t(c.hidden), vocab = std::uint64_t(c.vocab);
  // Latent attention's own arrays (latent_attention.cpp): the low-rank query before and
  // after its norm, wkv_a's output, the latent twice, k_pe, q's rope parts, wkv_b's output.
  const LatentAttention& a = c.mla;
  const std::uint64_t kv_b = a.active() ? H * std::uint64_t(c.nope_dim() + a.v_head_dim) : 0;
  const std::uint64_t latent = a.active() ? 2 * std::uint64_t(a.q_lora_rank) + 4 * std::uint64_t(a.kv_lora_rank) +
                                                3 * std::uint64_t(a.rope_dim) + H * std::uint64_t(a.rope_dim) + kv_b
                                          : 0;
  const std::uint64_t widest = std::max({dim, q, hidden, kv_b});
  const mpfr_prec_t w = weight_precision_for(precision);
  const std::uint64_t at_p = mp_number_bytes(precision), at_w = mp_number_bytes(w);
  const std::uint64_t at_store = mp_number_bytes(std::max<mpfr_prec_t>(precision, kWeightPrecisionBits));

  const std::uint64_t persistent = T * (3 * dim + 2 * hidden + std::uint64_t(c.head_dim)) * at_p;
  // The attention probabilities are held whole only when their tap is kept; otherwise
  // each thread holds one row (reference/mp/attention.h).
  bool probs_kept = false;
  for (int l = 0; l < c.n_layers && !probs_kept; ++l) probs_kept = s.taps.wants(tap_layer_name(l, "attn.probs"));
  const std::uint64_t probs = probs_kept ? H * T * T : std::uint64_t(std::max(s.threads, 1)) * T;
  const std::uint64_t layer = (T * (2 * q + 2 * kv + latent) + probs) * at_p + (s.kv_policy ? 6 * T * kv * at_store : 0);
  const std::uint64_t logits = logit_tokens * (vocab + dim) * at_p;  // the logits and their tokens' normed rows
  const std::uint64_t vectors = (L * (2 * dim + q + 2 * kv + std::uint64_t(a.q_lora_rank + a.kv_lora_rank)) + dim) * at_w;
  const std::uint64_t scratch = std::uint64_t(std::max(s.threads, 1)) * (widest * (8 + at_w) + 4 * at_p);
  return persistent + layer + logits + vectors + scratch;
}

}  // namespace

std::uint64_t mp_forward_bytes(const ForwardShape& s, mpfr_prec_t precision) {
  return forward_working_bytes(s, precision, std::uint64_t(s.tokens)) + tap_values(s) * mp_number_bytes(precision);
}

std::uint64_t golden_bytes(const ForwardShape& s, int precision_bits, int guard_bits) {
  // Both runs alive at once (certify_at), each with its working memory, one logits block
  // and at most one layer's "out" copy in MPFR beyond it; every tap as float64.
  const ModelConfig& c = s.config;
  const std::uint64_t out_copy = s.taps.wants_layer_taps() ? std::uint64_t(s.tokens) * std::uint64_t(c.dim) : 0;
  std::uint64_t bytes = tap_values(s) * 8;
  // Enclosure: one run at P and its radii, a logits block as wide as the values'.
  const mpfr_prec_t second = guard_bits > 0 ? mpfr_prec_t(precision_bits) : kRadiusBits;
  for (const mpfr_prec_t p : {mpfr_prec_t(precision_bits) + guard_bits, second}) {
    const int block = golden_logits_block(c, s.tokens, guard_bits > 0 ? p : mpfr_prec_t(precision_bits));
    bytes += forward_working_bytes(s, p, std::uint64_t(block)) + out_copy * mp_number_bytes(p);
  }
  return bytes;
}

std::uint64_t emulated_bytes(const ForwardShape& s) {
  const ModelConfig& c = s.config;
  // Latent attention's baseline is the MPFR forward in FP32's 24 bits (emulated_forward.h),
  // its taps then converted to float64.
  constexpr mpfr_prec_t kFp32Bits = 24;
  if (c.mla.active()) return mp_forward_bytes(s, kFp32Bits) + tap_values(s) * sizeof(double);
  const std::uint64_t T = std::uint64_t(s.tokens), H = std::uint64_t(c.n_heads), hd = std::uint64_t(c.head_dim);
  const std::uint64_t dim = std::uint64_t(c.dim), q = std::uint64_t(c.q_dim()), kv = std::uint64_t(c.kv_dim());
  const std::uint64_t hidden = std::uint64_t(c.hidden), vocab = std::uint64_t(c.vocab);
  const std::uint64_t widest = std::max({dim, q, hidden}), padded = T + 31;
  const std::uint64_t f = sizeof(float), d = sizeof(double);
  const std::uint64_t at_24 = mp_number_bytes(24), at_53 = mp_number_bytes(kWeightPrecisionBits);

  const std::uint64_t persistent = T * (3 * dim + 2 * hidden) * f + T * hd * (f + at_24);
  const std::uint64_t layer = (T * (2 * q + 2 * kv) + H * T * T) * f + 2 * T * kv * at_24 + 6 * T * kv * (at_53 + d);
  const std::uint64_t projection = widest * padded * f + std::uint64_t(std::max(s.threads, 1)) * (widest * (d + f) + padded * f);
  const std::uint64_t taps = tap_values(s) * d + T * vocab * f;
  return persistent + layer + projection + taps;
}

}  // namespace kvfid::ref
