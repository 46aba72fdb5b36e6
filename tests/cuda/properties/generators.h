#pragma once
// RapidCheck generators for the engine's property suite: model shapes and weights,
// sequence lengths, prompt splits, tokens and batch schedules. Every generator
// shrinks toward the simplest case (one layer, MHA, the smallest head, f32, the
// shortest sequence, the prompt in one chunk), so a failure is reported minimal.
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include <rapidcheck.h>

#include "cuda/engine/engine_options.h"
#include "reference/model/model.h"
#include "reference/synth/synthetic_model.h"

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below
// RapidCheck prints a generated format with it (found by argument-dependent lookup).
inline void showValue(FloatFormat f, std::ostream& os) { os << to_string(f); }
}  // namespace kvfid::engine

namespace kvfid::test {
using namespace kvfid::ref;  // the specification's types
using namespace kvfid::engine;  // the engine under test

// The context every property's models are configured for (ModelCase::config's max_seq):
// longer than any sequence a property draws.
inline constexpr int kMaxSeq = 512;

// Everything that defines a generated model and how the engine stores it.
struct ModelCase {
  int n_kv_heads = 1;
  int group = 1;     // query heads per KV head: 1 (MHA), 2, 4, 7; n_kv_heads 1 makes it MQA
  int head_dim = 2;  // even (RoPE pairs), including odd multiples of 2 (18, 54)
  int n_layers = 1;
  int dim = 8;
  int hidden = 8;
  int vocab = 16;
  RopeStyle rope = RopeStyle::interleaved;
  bool bias = false;  // qkv bias (Qwen2 style)
  FloatFormat weights = FloatFormat::f32;
  FloatFormat kv = FloatFormat::f32;
  std::string kv_policy;  // when not empty, the KV policy (kv_policy.h) instead of kv
  SynthOptions synth;  // outlier K channels, massive residual dimensions, stored precision
  std::uint32_t seed = 0;
  bool llama3_rope = false;  // theta 500000 with Llama 3 RoPE scaling (every band: tiny-llama3's)
  bool qk_norm = false;      // Qwen3: per-head RMSNorm of q and k (then no q/k/v bias)
  int window = 0;            // sliding window of the layers from full_layers on (0: none)
  int full_layers = 0;
  // Gemma 2's block (config.h's apply_gemma2): embed scale, 1 + w gains, post-norms,
  // GeGLU, scores over sqrt(head_dim + 6) soft-capped at 4, logits at 3; a window then
  // falls on even layers.
  bool gemma2 = false;
  // DeepSeek's latent attention when active (config.h's apply_deepseek2, head_dim the
  // nope part): then one key head per query head, no bias, q/k norms, window or Gemma
  // block, and a plain KV format; read by `latent_path`.
  LatentAttention latent;
  LatentPath latent_path = LatentPath::reconstruct;

  ModelConfig config(int max_seq) const;
  bool windowed() const;  // some layer has a sliding window (which takes only evict=window)
  Model model(int max_seq) const;
  EngineOptions options(Backend backend) const;
};

void showValue(const ModelCase& c, std::ostream& os);  // RapidCheck prints counterexamples with it

// Small models: dim 8..48, hidden 8..96, one or two layers, vocab 16..96.
rc::Gen<ModelCase> gen_model_case();
// Latent attention for gen_model_case: inactive three times in four, and always on the
// CUDA engine (which has no latent kernels yet).
rc::Gen<LatentAttention> gen_latent_attention();
// Real head sizes in a small model: head_dim 64, 128 or 256, GQA 7:1 with one or two KV
// heads (Qwen2.5-0.5B is 14/2 at head_dim 64, Qwen2.5-7B 28/4 at 128, Gemma-2-2B's heads
// are 256 wide), one or two layers, dim 32..128, hidden 32..160, vocab 16..96; the rest
// drawn as gen_model_case (Gemma 2's block included).
rc::Gen<ModelCase> gen_real_head_case();
// Inside a property: half the cases from each of the two above, classified so the
// report shows how many ran at real head sizes.
ModelCase draw_small_or_real_heads();
// Sequence lengths in [1, max]: three cases in four up to 40, the rest anywhere up to
// max or near it (from 16 below the 256-key attention split, num::kSplit, so that
// max = 300 crosses it in about one case in ten).
// A KV policy (reference/formats/quant/kv_policy.h) for the case's layers, or one in
// four times "" (the case's plain kv format): a registered format each for K and V
// (a block format on a kv_dim it does not divide pads each row's last block), and
// maybe edges=N:FMT, hot=W
// (1..48, so windows both shorter and longer than the prompt occur), kivi (K in a
// format of blocks longer than one), scale=S, rot=R (one in three: hadamard[:SEED] on a
// power-of-two head_dim, else orthogonal:SEED), and with `eviction` evict=E (one in
// two, without KIVI, on the twin: gen_eviction, or on a windowed model the window
// cache). Every registered format can be drawn. A latent-attention case gets "" (its
// plain kv format: what a latent cache takes).
rc::Gen<std::string> gen_kv_policy(const ModelCase& c, bool eviction = true);
// An eviction policy (eviction_spec.h) of every kind for a model of n_layers, budgets as
// token counts 1..40 (so they do not depend on a sequence's capacity and evict within
// short sequences), one per layer one time in three.
rc::Gen<std::string> gen_eviction(int n_layers);
rc::Gen<int> gen_length(int max = 300);
rc::Gen<std::vector<int>> gen_tokens(int count, int vocab);
// A random partition of `total` tokens into consecutive chunk sizes (each >= 1).
rc::Gen<std::vector<int>> gen_partition(int total);

}  // namespace kvfid::test
