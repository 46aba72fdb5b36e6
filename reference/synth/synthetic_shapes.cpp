#include "reference/synth/synthetic_shapes.h"

#include "reference/util/input_error.h"

namespace kvfid::ref {

namespace {

ModelConfig tiny(Arch arch, int vocab, int dim, int heads, int kv_heads, int hidden, int max_seq, double eps,
                 double theta, bool tied) {
  ModelConfig c;
  c.arch = arch;
  c.vocab = vocab, c.dim = dim, c.n_layers = 2, c.n_heads = heads, c.n_kv_heads = kv_heads, c.head_dim = 16;
  c.hidden = hidden, c.max_seq = max_seq, c.rms_norm_eps = eps, c.rope_theta = theta, c.rope = RopeStyle::rotate_half;
  c.tied_classifier = tied, c.qkv_bias = arch == Arch::qwen2;
  return c;
}

struct RealShape {
  const char* name;
  Arch arch;
  int dim, hidden, layers, heads, kv_heads, head_dim, vocab, max_seq;
  bool tied;
  double theta, eps;
  RopeScaling rope_scaling;
  int sliding_window = 0;
  double query_pre_attn_scalar = 0;  // Gemma 2's, with its soft-caps (50, 30)
};

// From the models' published config.json files (hidden_size, intermediate_size,
// num_hidden_layers, num_attention_heads, num_key_value_heads, head_dim, vocab_size,
// max_position_embeddings, tie_word_embeddings, rope_theta, rms_norm_eps, rope_scaling:
// factor, low_freq_factor, high_freq_factor, original_max_position_embeddings;
// sliding_window).
constexpr RealShape kRealShapes[] = {
    {"qwen2.5-0.5b", Arch::qwen2, 896, 4864, 24, 14, 2, 64, 151936, 32768, true, 1e6, 1e-6, {}, 0},
    {"qwen2.5-7b", Arch::qwen2, 3584, 18944, 28, 28, 4, 128, 152064, 131072, false, 1e6, 1e-6, {}, 0},
    {"llama-3.2-1b", Arch::llama, 2048, 8192, 16, 32, 8, 64, 128256, 131072, true, 500000.0, 1e-5, {32, 1, 4, 8192}, 0},
    {"llama-3.1-8b", Arch::llama, 4096, 14336, 32, 32, 8, 128, 128256, 131072, false, 500000.0, 1e-5, {8, 1, 4, 8192}, 0},
    {"qwen3-0.6b", Arch::qwen3, 1024, 3072, 28, 16, 8, 128, 151936, 40960, true, 1e6, 1e-6, {}, 0},
    {"qwen3-8b", Arch::qwen3, 4096, 12288, 36, 32, 8, 128, 151936, 40960, false, 1e6, 1e-6, {}, 0},
    {"mistral-7b", Arch::mistral, 4096, 14336, 32, 32, 8, 128, 32000, 32768, false, 10000.0, 1e-5, {}, 4096},
    {"gemma-2-2b", Arch::gemma2, 2304, 9216, 26, 8, 4, 256, 256000, 8192, true, 10000.0, 1e-6, {}, 4096, 256},
    {"gemma-2-9b", Arch::gemma2, 3584, 14336, 42, 16, 8, 256, 256000, 8192, true, 10000.0, 1e-6, {}, 4096, 256},
};

// Gemma 2's published soft-caps (attn_logit_softcapping, final_logit_softcapping).
constexpr double kGemma2AttnSoftcap = 50.0, kGemma2FinalSoftcap = 30.0;

}  // namespace

std::vector<std::string> synthetic_shape_names() {
  return {"tiny-llama", "tiny-qwen2", "tiny-mqa", "tiny-llama3", "tiny-qwen3", "tiny-mistral", "tiny-gemma2", "tiny-mla"};
}

std::vector<std::string> real_shape_names() {
  std::vector<std::string> names;
  for (const RealShape& s : kRealShapes) names.push_back(s.name);
  return names;
}

ModelConfig synthetic_shape(const std::string& name, const std::string& source) {
  // Qwen2.5-7B's ratios at toy width for tiny-qwen2: 7 query heads per KV head, q/k/v bias, theta 1e6.
  if (name == "tiny-llama") return tiny(Arch::llama, 256, 64, 4, 4, 172, 256, 1e-5, 10000.0, false);
  if (name == "tiny-qwen2") return tiny(Arch::qwen2, 256, 112, 7, 1, 296, 2048, 1e-6, 1000000.0, false);
  if (name == "tiny-mqa") return tiny(Arch::llama, 128, 64, 4, 1, 160, 256, 1e-5, 10000.0, true);
  // Llama 3.x at toy width: 2:1 GQA, theta 500000 and llama3 RoPE scaling whose original
  // context (64) puts head_dim 16's eight frequencies in all three bands: wavelength
  // 6.3 (< 64/4: kept), 32 (between: interpolated), 167 and beyond (> 64/1: divided by 8).
  if (name == "tiny-llama3") {
    ModelConfig c = tiny(Arch::llama, 256, 64, 4, 2, 172, 256, 1e-5, 500000.0, false);
    c.rope_scaling = RopeScaling{8, 1, 4, 64};
    return c;
  }
  // Qwen3 at toy width: q/k norms, no bias, 2:1 GQA, an explicit head_dim whose heads are
  // wider than the model (q_dim 128 > dim 64, as Qwen3-0.6B's 2048 > 1024), tied.
  // Mistral at toy width: Llama's layers, 2:1 GQA, every layer windowed to 6 positions,
  // so that even the 8-token prompt drops keys from its last queries.
  if (name == "tiny-mistral") {
    ModelConfig c = tiny(Arch::mistral, 256, 64, 4, 2, 172, 256, 1e-5, 10000.0, false);
    c.sliding_window = 6;
    return c;
  }
  // Gemma 2 at toy width: 2:1 GQA, heads narrower than the model (q_dim 64 < dim 72, as
  // Gemma-2-2B's 2048 < 2304), scores over sqrt(24) rather than sqrt(head_dim) (as
  // Gemma-2-27B's 144 for heads of 128), a window of 5 on layer 0 and layer 1 global,
  // embed_scale bf16(sqrt 72) = 8.5, and soft-caps low enough to bend this model's
  // scores and logits (a few units) where Gemma's 50 and 30 would leave them straight.
  if (name == "tiny-gemma2") {
    ModelConfig c = tiny(Arch::gemma2, 256, 72, 4, 2, 160, 256, 1e-6, 10000.0, true);
    c.sliding_window = 5;
    apply_gemma2(c, 24, 4.0, 3.0);
    return c;
  }
  // DeepSeek-V2's latent attention at toy width: a low-rank query (24) and a latent of
  // 32, keys of 16 + 8 (nope + rope) and values of 16 -- narrower than the keys, as
  // DeepSeek's 128 against 192 -- four heads reading one cached latent, untied.
  if (name == "tiny-mla") {
    ModelConfig c = tiny(Arch::deepseek2, 256, 64, 4, 4, 160, 256, 1e-6, 10000.0, false);
    apply_deepseek2(c, 16, LatentAttention{24, 32, 8, 16});
    return c;
  }
  if (name == "tiny-qwen3") {
    ModelConfig c = tiny(Arch::qwen3, 256, 64, 4, 2, 160, 256, 1e-6, 1000000.0, true);
    c.head_dim = 32, c.qkv_bias = false, c.qk_norm = true;
    return c;
  }
  for (const RealShape& s : kRealShapes)
    if (name == s.name) {
      ModelConfig c;
      c.arch = s.arch;
      c.vocab = s.vocab, c.dim = s.dim, c.n_layers = s.layers, c.n_heads = s.heads, c.n_kv_heads = s.kv_heads;
      c.head_dim = s.head_dim, c.hidden = s.hidden, c.max_seq = s.max_seq, c.rms_norm_eps = s.eps;
      c.rope_theta = s.theta, c.rope = RopeStyle::rotate_half, c.tied_classifier = s.tied;
      c.qkv_bias = s.arch == Arch::qwen2;
      c.rope_scaling = s.rope_scaling;
      c.qk_norm = s.arch == Arch::qwen3;
      c.sliding_window = s.sliding_window;
      if (s.arch == Arch::gemma2) apply_gemma2(c, s.query_pre_attn_scalar, kGemma2AttnSoftcap, kGemma2FinalSoftcap);
      return c;
    }
  std::string known;
  for (const auto& names : {synthetic_shape_names(), real_shape_names()})
    for (const std::string& n : names) known += (known.empty() ? "" : ", ") + n;
  throw InputError(source, "unknown shape '" + name + "' (expected one of " + known + ")");
}

ModelConfig reduced_shape(const ModelConfig& full, std::optional<long long> layers, std::optional<long long> vocab,
                          const std::string& source) {
  ModelConfig c = full;
  if (layers) {
    if (*layers < 1 || *layers > full.n_layers)
      throw InputError(source, "layers " + std::to_string(*layers) + " outside [1, " + std::to_string(full.n_layers) +
                                   "], the shape's own depth");
    c.n_layers = int(*layers);
  }
  if (vocab) {
    if (*vocab < kMinReducedVocab || *vocab > full.vocab)
      throw InputError(source, "vocab " + std::to_string(*vocab) + " outside [" + std::to_string(kMinReducedVocab) +
                                   ", " + std::to_string(full.vocab) + "] (" + std::to_string(kMinReducedVocab) +
                                   " keeps every committed prompt's ids valid)");
    c.vocab = int(*vocab);
  }
  return c;
}

}  // namespace kvfid::ref
