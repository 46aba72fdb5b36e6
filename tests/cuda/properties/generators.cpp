#include "tests/cuda/properties/generators.h"
#include "tests/common/typed_options.h"

#include <algorithm>
#include <tuple>

#include "cuda/common/attention_math.h"
#include "reference/formats/quant/registry.h"
#include "reference/synth/synthetic_shapes.h"
#include "tests/cuda/properties/property_check.h"

namespace kvfid::test {
using namespace kvfid::ref;  // the specification's types
using namespace kvfid::engine;  // the engine under test
namespace num = kvfid::engine::num;  // the engine's arithmetic (which sees the numeric core's too)

namespace {

const char* name_of(SynthPrecision p) {
  switch (p) {
    case SynthPrecision::f32: return "f32";
    case SynthPrecision::f16: return "f16";
    case SynthPrecision::bf16: return "bf16";
  }
  return "?";
}

// tiny-gemma2's soft-caps: its scores (rms 2, up to 13) and logits (rms 1.3, up to 5)
// reach both the straight and the saturated part of cap * tanh(z / cap).
constexpr double kPropertyAttnSoftcap = 4.0, kPropertyFinalSoftcap = 3.0;

}  // namespace

ModelConfig ModelCase::config(int max_seq) const {
  ModelConfig c;
  c.arch = qk_norm ? Arch::qwen3 : bias ? Arch::qwen2 : gemma2 ? Arch::gemma2 : Arch::llama;
  c.vocab = vocab;
  c.dim = dim;
  c.n_layers = n_layers;
  c.n_heads = n_kv_heads * group;
  c.n_kv_heads = n_kv_heads;
  c.head_dim = head_dim;
  c.hidden = hidden;
  c.max_seq = max_seq;
  c.rms_norm_eps = bias ? 1e-6 : 1e-5;
  c.rope_theta = bias ? 1e6 : 1e4;
  c.rope = rope;
  c.tied_classifier = !bias;
  c.qkv_bias = bias && !qk_norm;
  c.qk_norm = qk_norm;
  c.sliding_window = window, c.full_attention_layers = full_layers;
  if (llama3_rope) c.rope_theta = 500000.0, c.rope_scaling = synthetic_shape("tiny-llama3").rope_scaling;
  // Caps low enough to bend these models' scores and logits (tiny-gemma2's).
  if (gemma2 && !latent.active()) apply_gemma2(c, head_dim + 6, kPropertyAttnSoftcap, kPropertyFinalSoftcap);
  if (latent.active()) {  // DeepSeek's block: none of the features above but the RoPE style and scaling
    c.arch = Arch::deepseek2;
    c.qkv_bias = c.qk_norm = false;
    c.sliding_window = c.full_attention_layers = 0;
    apply_deepseek2(c, head_dim, latent);
  }
  return c;
}

bool ModelCase::windowed() const {
  const ModelConfig config = this->config(1);
  for (int l = 0; l < n_layers; ++l)
    if (config.window_of(l) > 0) return true;
  return false;
}

Model ModelCase::model(int max_seq) const { return make_synthetic_model(config(max_seq), seed, synth); }

EngineOptions ModelCase::options(Backend backend) const {
  EngineOptions o;
  o.backend = backend;
  o.weights = weight_format(weights);
  o.kv = kv_policy.empty() ? kv_spec(kv) : kv_spec(kv_policy);
  o.latent = latent_path;
  return o;
}

void showValue(const ModelCase& c, std::ostream& os) {
  os << "{heads " << c.n_kv_heads * c.group << "/" << c.n_kv_heads << " (group " << c.group << "), head_dim "
     << c.head_dim << ", layers " << c.n_layers << ", dim " << c.dim << ", hidden " << c.hidden << ", vocab "
     << c.vocab << ", rope " << to_string(c.rope) << ", bias " << c.bias << ", weights " << to_string(c.weights)
     << ", kv " << (c.kv_policy.empty() ? to_string(c.kv) : c.kv_policy)
     << (c.llama3_rope ? ", llama3 rope scaling" : "") << (c.qk_norm ? ", qwen3 q/k norms" : "")
     << (c.window > 0 ? ", window " + std::to_string(c.window) +
                            (c.gemma2 ? " on even layers" : " from layer " + std::to_string(c.full_layers))
                      : "")
     << (c.gemma2 && !c.latent.active() ? ", gemma2 block" : "")
     << (c.latent.active() ? ", latent attention {q_lora_rank " + std::to_string(c.latent.q_lora_rank) + ", kv_lora_rank " +
                                 std::to_string(c.latent.kv_lora_rank) + ", rope " + std::to_string(c.latent.rope_dim) +
                                 ", v_head_dim " + std::to_string(c.latent.v_head_dim) + ", " +
                                 to_string(c.latent_path) + "} (head_dim is its nope part)"
                           : "")
     << ", synth {precision " << name_of(c.synth.precision) << ", k outliers "
     << c.synth.k_outlier_channels << " x" << c.synth.k_outlier_scale << ", massive dims " << c.synth.massive_dims
     << " x" << c.synth.massive_scale << "}, seed " << c.seed << "}";
}

rc::Gen<ModelCase> gen_model_case() {
  using namespace rc;
  const auto formats = gen::element(FloatFormat::f32, FloatFormat::f16, FloatFormat::bf16);
  const Gen<SynthOptions> synth = gen::build<SynthOptions>(
      gen::set(&SynthOptions::precision, gen::element(SynthPrecision::f32, SynthPrecision::f16, SynthPrecision::bf16)),
      gen::set(&SynthOptions::k_outlier_channels, gen::inRange(0, 4)),
      gen::set(&SynthOptions::k_outlier_scale, gen::element(1.0, 8.0, 32.0)),
      gen::set(&SynthOptions::massive_dims, gen::inRange(0, 3)),
      gen::set(&SynthOptions::massive_scale, gen::element(1.0, 16.0, 64.0)));
  return gen::build<ModelCase>(
      gen::set(&ModelCase::n_kv_heads, gen::inRange(1, 3)),
      gen::set(&ModelCase::group, gen::element(1, 2, 4, 7)),
      gen::set(&ModelCase::head_dim, gen::element(2, 4, 6, 8, 10, 16, 18, 32, 54)),
      gen::set(&ModelCase::n_layers, gen::inRange(1, 3)),
      gen::set(&ModelCase::dim, gen::inRange(8, 49)),
      gen::set(&ModelCase::hidden, gen::inRange(8, 97)),
      gen::set(&ModelCase::vocab, gen::inRange(16, 97)),
      gen::set(&ModelCase::rope, gen::element(RopeStyle::interleaved, RopeStyle::rotate_half)),
      gen::set(&ModelCase::bias, gen::arbitrary<bool>()),
      gen::set(&ModelCase::weights, formats),
      gen::set(&ModelCase::kv, formats),
      gen::set(&ModelCase::synth, synth),
      gen::set(&ModelCase::seed, gen::arbitrary<std::uint32_t>()),
      // Last, so that the fields above draw what they drew before it was added.
      gen::set(&ModelCase::llama3_rope, gen::arbitrary<bool>()),
      gen::set(&ModelCase::qk_norm, gen::arbitrary<bool>()),
      // Windows shorter than a prompt, one about a warp, one past a 256-key split.
      gen::set(&ModelCase::window, gen::element(0, 0, 1, 3, 33, 300)),
      gen::set(&ModelCase::full_layers, gen::inRange(0, 2)),
      gen::set(&ModelCase::gemma2, gen::weightedElement<bool>({{3, false}, {1, true}})),
      gen::set(&ModelCase::latent, gen_latent_attention()),
      gen::set(&ModelCase::latent_path, gen::element(LatentPath::reconstruct, LatentPath::absorb)));
}

rc::Gen<LatentAttention> gen_latent_attention() {
  using namespace rc;
  // Latents and values of widths the twin's SIMD takes (multiples of 8) and does not.
  const Gen<LatentAttention> active = gen::build<LatentAttention>(
      gen::set(&LatentAttention::q_lora_rank, gen::element(0, 0, 8, 12)),
      gen::set(&LatentAttention::kv_lora_rank, gen::element(4, 8, 12, 32, 40)),
      gen::set(&LatentAttention::rope_dim, gen::element(2, 4, 8)),
      gen::set(&LatentAttention::v_head_dim, gen::element(2, 4, 8, 16, 24)));
  return gen::weightedOneOf<LatentAttention>({{3, gen::just(LatentAttention{})}, {1, active}});
}

rc::Gen<ModelCase> gen_real_head_case() {
  using namespace rc;
  return gen::map(gen::tuple(gen_model_case(), gen::inRange(1, 3), gen::element(64, 128, 256), gen::inRange(32, 129),
                             gen::inRange(32, 161)),
                  [](const std::tuple<ModelCase, int, int, int, int>& t) {
                    ModelCase c = std::get<0>(t);
                    c.n_kv_heads = std::get<1>(t);
                    c.group = 7;
                    c.head_dim = std::get<2>(t);
                    c.dim = std::get<3>(t);
                    c.hidden = std::get<4>(t);
                    return c;
                  });
}

ModelCase draw_small_or_real_heads() {
  const bool real_heads = *rc::gen::arbitrary<bool>();
  RC_CLASSIFY(real_heads, "head_dim 64/128/256, GQA 7:1");
  const ModelCase c = real_heads ? *gen_real_head_case() : *gen_model_case();
  RC_CLASSIFY(c.latent.active(), "latent attention");
  return c;
}

rc::Gen<std::string> gen_kv_policy(const ModelCase& c, bool eviction) {
  using namespace rc;
  if (c.latent.active()) return gen::just(std::string());  // a latent cache is held in a plain format (its kv)
  const int n_layers = c.n_layers;
  // Every format fits any kv_dim (a row the block does not divide gets a padded last
  // block, quant/row_blocks.h); KIVI needs a K format with blocks > 1.
  std::vector<std::string> all, blocked;
  for (const quant::FormatInfo& f : quant::all_formats()) {
    all.push_back(f.name);
    if (f.block > 1) blocked.push_back(f.name);
  }
  const Gen<std::string> policy = gen::exec([=] {
    const bool kivi = !blocked.empty() && *gen::weightedElement<bool>({{3, false}, {1, true}});
    std::string spec = "k=" + *gen::elementOf(kivi ? blocked : all) + "+v=" + *gen::elementOf(all);
    // Under KIVI some layer must keep the blocked K format: edges leave a middle layer.
    const int max_edges = kivi ? (n_layers - 1) / 2 : n_layers;
    if (max_edges >= 1 && *gen::weightedElement<bool>({{2, false}, {1, true}}))
      spec += "+edges=" + std::to_string(*gen::inRange(1, max_edges + 1)) + ":" + *gen::elementOf(all);
    if (*gen::arbitrary<bool>()) spec += "+hot=" + std::to_string(*gen::inRange(1, 49));
    if (kivi) spec += "+kivi";
    if (*gen::weightedElement<bool>({{3, false}, {1, true}}))
      spec += "+scale=" + *gen::elementOf(std::vector<std::string>{"0.5", "2", "0.0078125"});
    // A rotation (kv_rotation.h): Hadamard where head_dim is a power of two, else a
    // seeded orthogonal one.
    if (*gen::weightedElement<bool>({{2, false}, {1, true}})) {
      const bool pow2 = (c.head_dim & (c.head_dim - 1)) == 0;
      const std::string seed = std::to_string(*gen::inRange(0, 1000));
      spec += pow2 && *gen::arbitrary<bool>() ? (*gen::arbitrary<bool>() ? "+rot=hadamard" : "+rot=hadamard:" + seed)
                                              : "+rot=orthogonal:" + seed;
    }
    // An eviction (eviction_spec.h), never with KIVI; on a model with a sliding window
    // the window cache, the one eviction such a model takes.
    if (eviction && !kivi && *gen::arbitrary<bool>())
      spec += "+evict=" + (c.windowed() ? std::string("window") : *gen_eviction(n_layers));
    return spec;
  });
  return gen::weightedOneOf<std::string>({{1, gen::just(std::string())}, {3, policy}});
}

rc::Gen<std::string> gen_eviction(int n_layers) {
  using namespace rc;
  return gen::exec([n_layers] {
    // One budget, or one per layer ('/'-joined) one time in three.
    std::string budget = std::to_string(*gen::inRange(1, 41));
    if (*gen::weightedElement<bool>({{2, false}, {1, true}}))
      for (int l = 1; l < n_layers; ++l) budget += "/" + std::to_string(*gen::inRange(1, 41));
    switch (*gen::inRange(0, 5)) {
      case 0: return "streaming:" + std::to_string(*gen::inRange(0, 5)) + "," + std::to_string(*gen::inRange(1, 41));
      case 1: return "h2o:" + budget;
      case 2: return "tova:" + budget;
      case 3: return "knorm:" + budget;
      default:
        return "snapkv:" + budget + "," + std::to_string(*gen::inRange(1, 9)) + "," +
               std::to_string(2 * *gen::inRange(0, 4) + 1);
    }
  });
}

rc::Gen<int> gen_length(int max) {
  using namespace rc;
  // Short lengths grow with RapidCheck's size (the first cases are the smallest); the
  // long ones are drawn at full size, so even a small budget crosses the split.
  const int near_split = std::clamp(num::kSplit - 16, 1, max);
  return gen::weightedOneOf<int>({{6, gen::inRange(1, std::min(max, 40) + 1)},
                                  {1, gen::resize(100, gen::inRange(1, max + 1))},
                                  {1, gen::resize(100, gen::inRange(near_split, max + 1))}});
}

rc::Gen<std::vector<int>> gen_tokens(int count, int vocab) {
  return rc::gen::container<std::vector<int>>(std::size_t(count), rc::gen::inRange(0, vocab));
}

rc::Gen<std::vector<int>> gen_partition(int total) {
  using namespace rc;
  // Chunk sizes drawn small or anywhere up to the whole, cut to sum to `total`; the
  // empty draw (what shrinking aims for) is the whole prompt as one chunk.
  const Gen<int> size = gen::weightedOneOf<int>({{3, gen::inRange(1, 8)}, {1, gen::inRange(1, total + 1)}});
  return gen::map(gen::container<std::vector<int>>(size), [total](const std::vector<int>& sizes) {
    std::vector<int> chunks;
    int left = total;
    for (int s : sizes) {
      if (left == 0) break;
      chunks.push_back(std::min(s, left));
      left -= chunks.back();
    }
    if (left > 0) chunks.push_back(left);
    return chunks;
  });
}

}  // namespace kvfid::test
