#include "reference/model/config.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "reference/formats/float_format.h"
#include "reference/util/input_error.h"
#include "reference/util/checked_arith.h"

namespace kvfid::ref {

namespace {

// The most elements kvfid accepts in one weight matrix: 2^40, 256 times the largest
// real one (a 256k vocab x 16k dim embedding is 2^32), and small enough that its bytes
// at 8 per element and any sum of a few such counts stay far inside int64.
constexpr std::int64_t kMaxMatrixElements = std::int64_t(1) << 40;

// parameter_count() in arithmetic that cannot wrap: each matrix is at most 2^40
// elements once validate() has checked them, but n_layers of them can still exceed 2^63.
std::optional<std::int64_t> checked_parameter_count(const ModelConfig& c) {
  const std::int64_t d = c.dim, q = std::int64_t(c.n_heads) * c.head_dim, kv = std::int64_t(c.n_kv_heads) * c.head_dim;
  std::optional<std::int64_t> per_layer = 2 * d;                                 // two RMSNorm weights
  if (c.mla.active()) {
    const LatentAttention& a = c.mla;
    const std::int64_t q_in = c.q_in_dim(), kv_b = std::int64_t(c.n_heads) * (c.nope_dim() + a.v_head_dim);
    if (a.q_lora_rank > 0) per_layer = checked_add(per_layer, checked_add(checked_mul(d, q_in), q_in));  // wq_a, q_a_norm
    per_layer = checked_add(per_layer, checked_mul(q_in, q));                                 // wq
    per_layer = checked_add(per_layer, checked_add(checked_mul(d, a.kv_lora_rank + a.rope_dim), a.kv_lora_rank));  // wkv_a, kv_a_norm
    per_layer = checked_add(per_layer, checked_mul(kv_b, a.kv_lora_rank));                    // wkv_b
    per_layer = checked_add(per_layer, checked_mul(std::int64_t(c.n_heads) * a.v_head_dim, d));  // wo
  } else {
    per_layer = checked_add(per_layer, checked_mul(d, q + 2 * kv));  // wq, wk, wv
    per_layer = checked_add(per_layer, checked_mul(q, d));           // wo
  }
  per_layer = checked_add(per_layer, checked_mul(checked_mul(3, d), c.hidden));  // w1, w2, w3
  if (c.qkv_bias) per_layer = checked_add(per_layer, q + 2 * kv);
  if (c.qk_norm) per_layer = checked_add(per_layer, 2 * std::int64_t(c.head_dim));  // q_norm, k_norm
  if (c.sandwich_norms) per_layer = checked_add(per_layer, 2 * d);                  // post_attn_norm, post_ffn_norm
  const std::optional<std::int64_t> table = checked_mul(std::int64_t(c.vocab), d);
  std::optional<std::int64_t> total = checked_add(checked_mul(std::int64_t(c.n_layers), per_layer), checked_add(table, d));
  if (!c.tied_classifier) total = checked_add(total, table);
  return total;
}

// MLA's own dimensions, and the features kvfid does not combine with it (none of
// DeepSeek-V2/V3's checkpoints has them).
void validate_latent_attention(const ModelConfig& c, const std::string& source) {
  const LatentAttention& a = c.mla;
  if (c.arch != Arch::deepseek2 || !a.active())
    throw InputError(source, "latent attention (kv_lora_rank) goes with deepseek2 and only with it");
  auto need = [&](bool ok, const std::string& what) {
    if (!ok) throw InputError(source, what);
  };
  need(a.q_lora_rank >= 0, "q_lora_rank must be 0 (none) or positive, got " + std::to_string(a.q_lora_rank));
  need(a.rope_dim > 0, "qk_rope_head_dim must be positive, got " + std::to_string(a.rope_dim));
  need(a.v_head_dim > 0, "v_head_dim must be positive, got " + std::to_string(a.v_head_dim));
  need(c.head_dim > a.rope_dim, "qk_nope_head_dim must be positive (head_dim " + std::to_string(c.head_dim) +
                                    " = qk_nope_head_dim + qk_rope_head_dim " + std::to_string(a.rope_dim) + ")");
  need(c.n_kv_heads == c.n_heads, "latent attention has one key head per query head (n_kv_heads " +
                                      std::to_string(c.n_kv_heads) + ", n_heads " + std::to_string(c.n_heads) + ")");
  need(!c.qkv_bias && !c.qk_norm && c.sliding_window == 0 && !c.sandwich_norms && c.attn_softcap == 0 &&
           c.final_softcap == 0 && c.query_scale_dim == 0 && c.embed_scale == 1.0 && !c.norm_unit_offset,
       "latent attention with q/k/v bias, q/k norms, a sliding window or Gemma 2's features is not supported");
  const auto need_int = [&](std::optional<std::int64_t> v, const char* what) {
    need(v && *v <= std::numeric_limits<int>::max(),
         std::string(what) + " exceeds " + std::to_string(std::numeric_limits<int>::max()));
  };
  need_int(checked_add(std::int64_t(a.kv_lora_rank), a.rope_dim), "kv_lora_rank + qk_rope_head_dim");
  need_int(checked_mul(std::int64_t(c.n_heads), checked_add(std::int64_t(c.head_dim - a.rope_dim), a.v_head_dim)),
           "n_heads x (qk_nope_head_dim + v_head_dim)");
}

}  // namespace

void ModelConfig::validate(const std::string& source) const {
  auto need_positive = [&](int v, const char* name) {
    if (v <= 0) throw InputError(source, std::string(name) + " must be positive, got " + std::to_string(v));
  };
  need_positive(vocab, "vocab");
  need_positive(dim, "dim");
  need_positive(n_layers, "n_layers");
  need_positive(n_heads, "n_heads");
  need_positive(n_kv_heads, "n_kv_heads");
  need_positive(head_dim, "head_dim");
  need_positive(hidden, "hidden");
  need_positive(max_seq, "max_seq");
  if (n_heads % n_kv_heads != 0)
    throw InputError(source, "n_heads " + std::to_string(n_heads) + " is not a multiple of n_kv_heads " +
                                 std::to_string(n_kv_heads));
  if (mla.active() || arch == Arch::deepseek2) validate_latent_attention(*this, source);
  if (rope_head_dim() % 2 != 0)
    throw InputError(source, std::string(mla.active() ? "qk_rope_head_dim " : "head_dim ") +
                                 std::to_string(rope_head_dim()) + " is odd; RoPE needs pairs");
  if (!(rms_norm_eps > 0)) throw InputError(source, "rms_norm_eps must be positive");
  if (!(rope_theta > 1)) throw InputError(source, "rope_theta must be greater than 1");
  if (sliding_window < 0) throw InputError(source, "sliding_window must be positive (or 0: no window)");
  if (full_attention_layers < 0) throw InputError(source, "the count of full-attention layers must not be negative");
  // The reference takes these as exact; the engine rounds them (and 1/sqrt of the
  // score's) to FP32 once, which [1e-30, 1e30] keeps finite and normal.
  auto need_finite = [&](double v, bool zero_ok, const char* name) {
    if (!std::isfinite(v) || v < 0 || (v == 0 && !zero_ok) || (v != 0 && (v < 1e-30 || v > 1e30)))
      throw InputError(source, std::string(name) + " must be " + (zero_ok ? "0 or " : "") + "in [1e-30, 1e30]");
  };
  need_finite(embed_scale, false, "the embedding scale");
  need_finite(query_scale_dim, true, "query_pre_attn_scalar");
  need_finite(attn_softcap, true, "the attention soft-cap");
  need_finite(final_softcap, true, "the final logit soft-cap");
  if (rope_scaling.active()) {
    const RopeScaling& r = rope_scaling;
    // HF's own checks of llama3 scaling, and finite values: the reference takes them as exact.
    if (!(r.factor >= 1) || !std::isfinite(r.factor))
      throw InputError(source, "rope_scaling factor must be a finite number >= 1");
    if (!(r.low_freq_factor > 0) || !(r.high_freq_factor > r.low_freq_factor) || !std::isfinite(r.high_freq_factor))
      throw InputError(source, "rope_scaling needs 0 < low_freq_factor < high_freq_factor (finite)");
    if (r.original_max_positions <= 0)
      throw InputError(source, "rope_scaling original_max_position_embeddings must be positive");
  }
  // Every size the model implies, in 64-bit arithmetic that cannot wrap: the head
  // products are used as int throughout, the matrices must be addressable, and
  // parameter_count() must be exact (65536 heads of 65536 would wrap an int to 0).
  const auto need_int = [&](std::optional<std::int64_t> v, const std::string& what) {
    if (!v || *v > std::numeric_limits<int>::max())
      throw InputError(source, what + " exceeds " + std::to_string(std::numeric_limits<int>::max()));
  };
  need_int(checked_mul(std::int64_t(n_heads), head_dim), "n_heads x head_dim (" + std::to_string(n_heads) + " x " +
                                                             std::to_string(head_dim) + ")");
  need_int(checked_mul(std::int64_t(n_kv_heads), head_dim), "n_kv_heads x head_dim (" + std::to_string(n_kv_heads) +
                                                                " x " + std::to_string(head_dim) + ")");
  const struct {
    const char* name;
    std::int64_t rows, cols;
  } matrices[] = {{"vocab x dim", vocab, dim},
                  {"q_dim x dim", q_dim(), std::max(dim, q_in_dim())},
                  {"kv_dim x dim", kv_dim(), dim},
                  {"hidden x dim", hidden, dim},
                  {"kv_b x kv_lora_rank", std::int64_t(n_heads) * (nope_dim() + mla.v_head_dim), mla.kv_lora_rank},
                  {"(kv_lora_rank + qk_rope_head_dim) x dim", std::int64_t(mla.kv_lora_rank) + mla.rope_dim, dim},
                  {"q_lora_rank x dim", mla.q_lora_rank, dim},
                  {"dim x n_heads v_head_dim", dim, attn_out_dim()}};
  for (const auto& m : matrices)
    if (*checked_mul(m.rows, m.cols) > kMaxMatrixElements)
      throw InputError(source, std::string(m.name) + " = " + std::to_string(m.rows) + " x " + std::to_string(m.cols) +
                                   " exceeds the 2^40 elements kvfid allows a matrix");
  if (!checked_parameter_count(*this)) throw InputError(source, "the parameter count overflows 64 bits");
}

std::int64_t ModelConfig::parameter_count() const {
  const std::optional<std::int64_t> n = checked_parameter_count(*this);
  if (!n) throw std::logic_error("parameter_count of a config that validate() refuses");
  return *n;
}

std::int64_t ModelConfig::cache_values_per_token() const {
  return mla.active() ? std::int64_t(mla.kv_lora_rank) + mla.rope_dim : std::int64_t(kv_dim()) + v_dim();
}

double ModelConfig::kv_bytes_per_token(double bits_per_element) const {
  return double(n_layers) * double(cache_values_per_token()) * bits_per_element / 8.0;
}

void apply_deepseek2(ModelConfig& c, int nope_dim, const LatentAttention& mla) {
  c.mla = mla;
  c.head_dim = nope_dim + mla.rope_dim;
  c.n_kv_heads = c.n_heads;
  c.rope = RopeStyle::interleaved;
}

void apply_gemma2(ModelConfig& c, double query_pre_attn_scalar, double attn_softcap, double final_softcap) {
  c.embed_scale = round_to_format(std::sqrt(double(c.dim)), FloatFormat::bf16);
  c.norm_unit_offset = true, c.sandwich_norms = true, c.activation = Activation::gelu_tanh;
  c.alternating_window = true;
  c.query_scale_dim = query_pre_attn_scalar, c.attn_softcap = attn_softcap, c.final_softcap = final_softcap;
}

std::string to_string(Arch arch) {
  switch (arch) {
    case Arch::llama: return "llama";
    case Arch::qwen2: return "qwen2";
    case Arch::qwen3: return "qwen3";
    case Arch::mistral: return "mistral";
    case Arch::gemma2: return "gemma2";
    case Arch::deepseek2: return "deepseek2";
  }
  return "?";
}
std::string to_string(RopeStyle rope) { return rope == RopeStyle::interleaved ? "interleaved" : "rotate_half"; }
std::string to_string(Activation a) { return a == Activation::silu ? "silu" : "gelu_tanh"; }

nlohmann::json to_json(const ModelConfig& c) {
  nlohmann::json j = {{"arch", to_string(c.arch)},           {"vocab", c.vocab},
          {"dim", c.dim},                        {"n_layers", c.n_layers},
          {"n_heads", c.n_heads},                {"n_kv_heads", c.n_kv_heads},
          {"head_dim", c.head_dim},              {"hidden", c.hidden},
          {"max_seq", c.max_seq},                {"rms_norm_eps", c.rms_norm_eps},
          {"rope_theta", c.rope_theta},          {"rope", to_string(c.rope)},
          {"tied_classifier", c.tied_classifier}, {"qkv_bias", c.qkv_bias}};
  // Only when set: the descriptions of other models (and their goldens) stay as they were.
  if (c.qk_norm) j["qk_norm"] = true;
  if (c.sliding_window > 0) {
    j["sliding_window"] = c.sliding_window;
    j["full_attention_layers"] = c.full_attention_layers;
    if (c.alternating_window) j["alternating_window"] = true;
  }
  if (c.embed_scale != 1.0) j["embed_scale"] = c.embed_scale;
  if (c.norm_unit_offset) j["norm_unit_offset"] = true;
  if (c.sandwich_norms) j["sandwich_norms"] = true;
  if (c.activation != Activation::silu) j["activation"] = to_string(c.activation);
  if (c.query_scale_dim > 0) j["query_scale_dim"] = c.query_scale_dim;
  if (c.attn_softcap > 0) j["attn_softcap"] = c.attn_softcap;
  if (c.final_softcap > 0) j["final_softcap"] = c.final_softcap;
  if (c.rope_scaling.active()) j["rope_scaling"] = to_json(c.rope_scaling);
  if (c.mla.active())
    j["latent_attention"] = {{"q_lora_rank", c.mla.q_lora_rank},
                             {"kv_lora_rank", c.mla.kv_lora_rank},
                             {"qk_rope_head_dim", c.mla.rope_dim},
                             {"v_head_dim", c.mla.v_head_dim}};
  return j;
}

nlohmann::json to_json(const RopeScaling& r) {
  return {{"rope_type", "llama3"},
          {"factor", r.factor},
          {"low_freq_factor", r.low_freq_factor},
          {"high_freq_factor", r.high_freq_factor},
          {"original_max_position_embeddings", r.original_max_positions}};
}

}  // namespace kvfid::ref
