// The CUDA engine against the twin, bit for bit, on every prefill/decode path (the tap
// sets include the engine's logprobs, so the log-softmax kernel is covered too). Skips
// with the reason when this build has no CUDA or the machine no device.
#include <gtest/gtest.h>

#include "reference/numeric/ieee.h"
#include "cuda/engine/engine.h"
#include "cuda/engine/engine_forward.h"
#include "cuda/engine/generate.h"
#include "reference/formats/quant/registry.h"
#include "reference/synth/synthetic_shapes.h"
#include "reference/synth/synthetic_model.h"
#include "reference/io/load_model.h"
#include "tests/common/test_env.h"
#include "tests/common/typed_options.h"
#include "tests/cuda/engine/engine_test_util.h"

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below
namespace {

using test::bitwise_difference;

// Empty when the CUDA engine can run here, else why not.
std::string cuda_unavailable_reason() {
  try {
    Engine probe(test::tiny_model(test::tiny_config(2, 1, 8, RopeStyle::interleaved, false), 1),
                 EngineOptions{Backend::cuda});
    return "";
  } catch (const BackendUnavailable& e) {
    return e.what();
  }
}

#define SKIP_WITHOUT_CUDA()                                         \
  do {                                                              \
    static const std::string reason = cuda_unavailable_reason();   \
    if (!reason.empty()) GTEST_SKIP() << reason;                    \
  } while (0)

EngineOptions options(Backend b, FloatFormat w, FloatFormat kv, int chunk) {
  EngineOptions o;
  o.backend = b;
  o.weights = test::weight_format(w);
  o.kv = test::kv_spec(kv);
  o.chunk = chunk;
  return o;
}

// Sequence seq's cache, every layer, the same bits on the GPU and the twin (and under an
// eviction the same tokens cached).
void expect_same_caches(Engine& gpu, Engine& twin, int seq, int n_layers) {
  for (int l = 0; l < n_layers; ++l) {
    const CacheValues a = gpu.cache_values(seq, l), b = twin.cache_values(seq, l);
    for (const auto field : {&CacheValues::k, &CacheValues::v, &CacheValues::k_hot, &CacheValues::v_hot}) {
      ASSERT_EQ((a.*field).size(), (b.*field).size());
      for (std::size_t i = 0; i < (a.*field).size(); ++i)
        ASSERT_EQ(num::bits_of((a.*field)[i]), num::bits_of((b.*field)[i])) << "seq " << seq << " layer " << l << " " << i;
    }
    EXPECT_EQ(a.cached, b.cached) << "seq " << seq << " layer " << l;
    EXPECT_EQ(a.k_bytes, b.k_bytes);
    EXPECT_EQ(a.v_bytes, b.v_bytes);
  }
}

// f(gpu, twin): the CUDA engine and the twin, both under `o`.
template <class F>
void on_gpu_and_twin(const Model& m, EngineOptions o, F&& f) {
  o.backend = Backend::cuda;
  Engine gpu(m, o);
  o.backend = Backend::twin;
  Engine twin(m, o);
  f(gpu, twin);
}

// One step of both engines: the GPU's logits the twin's bits.
void expect_same_step(Engine& gpu, Engine& twin, const std::vector<SequenceInput>& step, int index) {
  const std::vector<float> expected = twin.step(step).logits;
  const std::vector<float>& actual = gpu.step(step).logits;
  ASSERT_EQ(actual.size(), expected.size());
  for (std::size_t j = 0; j < expected.size(); ++j)
    ASSERT_EQ(num::bits_of(actual[j]), num::bits_of(expected[j])) << "step " << index << " logit " << j;
}

// A 45-token prompt, a fork of its first 40 tokens, then `steps` batched decode steps
// of fork and source: every step's logits and both caches the twin's bits.
void expect_same_fork_and_decode(Engine& gpu, Engine& twin, const ModelConfig& c, int steps) {
  const int V = c.vocab;
  for (Engine* e : {&gpu, &twin}) {
    ASSERT_EQ(e->add_sequence(120), 0);
    e->step({{0, test::prompt_tokens(45, V, 4)}});
    ASSERT_EQ(e->fork_sequence(0, 40, 100), 1);
  }
  for (int d = 0; d < steps; ++d) expect_same_step(gpu, twin, {{1, {(3 * d) % V}}, {0, {(5 * d + 1) % V}}}, d);
  for (int seq : {0, 1}) expect_same_caches(gpu, twin, seq, c.n_layers);
}

// Every format pair, chunk sizes including token-by-token decode (decode kernel) and
// multi-token chunks (prefill kernel), a prompt crossing the 256-key split boundary.
TEST(GpuEngine, MatchesTwinOnAllPaths) {
  SKIP_WITHOUT_CUDA();
  SCOPED_TRACE(test::seed_trace());
  const Model m = test::tiny_model(test::tiny_config(4, 2, 16, RopeStyle::rotate_half, true), test::test_seed());
  const auto tokens = test::prompt_tokens(270, m.config.vocab, test::test_seed());
  for (FloatFormat w : {FloatFormat::f32, FloatFormat::f16, FloatFormat::bf16})
    for (FloatFormat kv : {FloatFormat::f32, FloatFormat::f16, FloatFormat::bf16}) {
      const TapSet ref = engine_forward(m, tokens, options(Backend::twin, w, kv, 0));
      ASSERT_EQ(test::gross_failure(ref), "");
      for (int chunk : {0, 1, 7, 256}) {
        SCOPED_TRACE("weights " + to_string(w) + " kv " + to_string(kv) + " chunk " + std::to_string(chunk));
        EXPECT_EQ(bitwise_difference(ref, engine_forward(m, tokens, options(Backend::cuda, w, kv, chunk))), "");
      }
    }
}

// GQA ratios 1, 2, 4, 7, 16, odd-multiple head sizes, both RoPE styles. The 16 x 72
// shape gives the attention block more query heads than one scoring pass takes
// (kHeadChunk) and more value outputs than one accumulation pass (kAttnThreads x
// kOutTile = 1024).
TEST(GpuEngine, MatchesTwinAcrossShapes) {
  SKIP_WITHOUT_CUDA();
  SCOPED_TRACE(test::seed_trace());
  struct Shape {
    int heads, kv_heads, head_dim;
    RopeStyle rope;
    bool bias;
  };
  for (const Shape& s : {Shape{2, 2, 18, RopeStyle::interleaved, false}, Shape{4, 2, 54, RopeStyle::rotate_half, true},
                         Shape{4, 1, 18, RopeStyle::rotate_half, false}, Shape{7, 1, 10, RopeStyle::interleaved, true},
                         Shape{14, 2, 64, RopeStyle::rotate_half, true}, Shape{16, 1, 72, RopeStyle::interleaved, false}}) {
    SCOPED_TRACE("heads " + std::to_string(s.heads) + "/" + std::to_string(s.kv_heads) + " head_dim " +
                 std::to_string(s.head_dim));
    const Model m = test::tiny_model(test::tiny_config(s.heads, s.kv_heads, s.head_dim, s.rope, s.bias), test::test_seed());
    const auto tokens = test::prompt_tokens(40, m.config.vocab, test::test_seed() + 1);
    const TapSet ref = engine_forward(m, tokens, options(Backend::twin, FloatFormat::f16, FloatFormat::bf16, 0));
    for (int chunk : {0, 1, 9})
      EXPECT_EQ(bitwise_difference(ref, engine_forward(m, tokens, options(Backend::cuda, FloatFormat::f16, FloatFormat::bf16, chunk))), "");
  }
}

// The architectures beyond Llama and Qwen2 on their committed fixtures: Llama 3's RoPE
// scaling, Qwen3's q/k norms, Mistral's window, Gemma 2's block (embed scale, 1 + w gains,
// post-norms, GeGLU, score scale, both soft-caps, a window on even layers); and Gemma 2 at
// heads of 256 (Gemma-2-2B's), whose attention blocks hold the widest query rows.
TEST(GpuEngine, MatchesTwinOnTheNewerArchitectures) {
  SKIP_WITHOUT_CUDA();
  SCOPED_TRACE(test::seed_trace());
  const auto tokens = test::prompt_tokens(40, 128, test::test_seed() + 2);
  std::vector<std::pair<std::string, Model>> models;
  for (const char* name : {"tiny-llama3", "tiny-qwen3", "tiny-mistral", "tiny-gemma2"})
    models.emplace_back(name, load_model(test::fixtures_dir() + "/" + name));
  ModelConfig wide = synthetic_shape("tiny-gemma2");
  wide.head_dim = 256, wide.n_heads = 2, wide.n_kv_heads = 1;
  models.emplace_back("gemma2 heads of 256", make_synthetic_model(wide, test::test_seed()));
  for (const auto& [name, m] : models) {
    SCOPED_TRACE(name);
    const TapSet ref = engine_forward(m, tokens, options(Backend::twin, FloatFormat::bf16, FloatFormat::f16, 0));
    ASSERT_EQ(test::gross_failure(ref), "");
    for (int chunk : {0, 1, 9})
      EXPECT_EQ(bitwise_difference(ref, engine_forward(m, tokens, options(Backend::cuda, FloatFormat::bf16, FloatFormat::f16, chunk))), "");
  }
}

// Batched decode of several sequences of different lengths on the GPU equals the twin
// running each alone.
TEST(GpuEngine, BatchedDecodeMatchesTwinAlone) {
  SKIP_WITHOUT_CUDA();
  SCOPED_TRACE(test::seed_trace());
  const Model m = test::tiny_model(test::tiny_config(4, 1, 16, RopeStyle::rotate_half, false), test::test_seed());
  const int V = m.config.vocab;
  const std::vector<int> lengths = {3, 300, 40};
  Engine gpu(m, options(Backend::cuda, FloatFormat::bf16, FloatFormat::f16, 0));
  std::vector<std::vector<float>> alone;
  std::vector<SequenceInput> prefill, decode;
  for (int i = 0; i < int(lengths.size()); ++i) {
    const auto prompt = test::prompt_tokens(lengths[i], V, 100 + i);
    Engine twin(m, options(Backend::twin, FloatFormat::bf16, FloatFormat::f16, 0));
    const int s = twin.add_sequence(400);
    twin.step({{s, prompt}});
    alone.push_back(twin.step({{s, {i + 1}}}).logits);
    prefill.push_back({gpu.add_sequence(400), prompt});
    decode.push_back({prefill.back().seq, {i + 1}});
  }
  gpu.step(prefill);
  const StepOutput& out = gpu.step(decode);
  for (int i = 0; i < int(lengths.size()); ++i)
    for (int j = 0; j < V; ++j)
      ASSERT_EQ(num::bits_of(out.logits[std::size_t(i) * V + j]), num::bits_of(alone[i][j])) << "sequence " << i << " logit " << j;
}

// `batch` sequences of 250..269 tokens prefilled on both engines, then two batched
// decode steps, the GPU's logits bit for bit the twin's.
void expect_batched_decode_matches(Engine& gpu, Engine& twin, int batch, int V) {
  std::vector<SequenceInput> step;
  for (int i = 0; i < batch; ++i) {
    ASSERT_EQ(gpu.add_sequence(300), i);
    ASSERT_EQ(twin.add_sequence(300), i);
    step.push_back({i, test::prompt_tokens(250 + i % 20, V, test::test_seed() + i)});
  }
  gpu.step(step);
  twin.step(step);
  for (int d = 0; d < 2; ++d) {
    for (int i = 0; i < batch; ++i) step[i].tokens = {(i + 5 * d) % V};
    const std::vector<float>& expected = twin.step(step).logits;
    const std::vector<float>& actual = gpu.step(step).logits;
    ASSERT_EQ(actual.size(), std::size_t(batch) * V);
    for (std::size_t j = 0; j < expected.size(); ++j)
      ASSERT_EQ(num::bits_of(actual[j]), num::bits_of(expected[j])) << "decode " << d << " logit " << j;
  }
}

// Decode attention spreads a KV head's query heads over several blocks when a step has
// few (row, KV head, split) blocks (cuda_backend.cu: decode_heads_per_block). With 7
// query heads per KV head and 2 splits, batches of 1, 22 and 45 sequences give 2, 44
// and 90 such blocks: on an H100 (132 SMs) 1, 2 and 3 query heads per block, the last
// block of a group holding fewer. Each batch decodes twice on the GPU and the twin,
// compared bit for bit.
TEST(GpuEngine, DecodeHeadSpreadChangesNoBit) {
  SKIP_WITHOUT_CUDA();
  SCOPED_TRACE(test::seed_trace());
  const Model m = test::tiny_model(test::tiny_config(7, 1, 10, RopeStyle::interleaved, true), test::test_seed());
  const int V = m.config.vocab;
  for (int batch : {1, 22, 45}) {
    SCOPED_TRACE("batch " + std::to_string(batch));
    Engine gpu(m, options(Backend::cuda, FloatFormat::f16, FloatFormat::f16, 0));
    Engine twin(m, options(Backend::twin, FloatFormat::f16, FloatFormat::f16, 0));
    expect_batched_decode_matches(gpu, twin, batch, V);  // 250..269 tokens: 1 or 2 fixed splits
  }
}

// The by-length split mode (cuda/engine/split_keys.h): the GPU cuts every step into the
// twin's split size, so they agree bit for bit, on the fast and the tiered path. 270
// tokens of a 2-KV-head model: token-by-token decode cuts them into 32-key splits, 7-token
// chunks (14 blocks: 10 splits wanted) into 32-key ones too, one-shot prefill and
// 256-token chunks take the fixed 256. Then batched decode of 1, 30 and 45 sequences of
// 250..269 tokens on a 1-KV-head model: 32-, 64- and 96-key splits (132 / 30 -> 5 splits
// of 54 or 55 keys -> 64; 132 / 45 -> 3 splits of 90 or 91 -> 96), the last a size no
// power of two gives.
TEST(GpuEngine, ByLengthSplitMatchesTwin) {
  SKIP_WITHOUT_CUDA();
  SCOPED_TRACE(test::seed_trace());
  const Model m = test::tiny_model(test::tiny_config(4, 2, 16, RopeStyle::rotate_half, true), test::test_seed());
  const auto tokens = test::prompt_tokens(270, m.config.vocab, test::test_seed());
  for (const char* kv : {"f16", "q8_0+hot=5"})
    for (int chunk : {0, 1, 7, 256}) {
      SCOPED_TRACE(std::string("kv ") + kv + " chunk " + std::to_string(chunk));
      EngineOptions o;
      o.kv = test::kv_spec(kv);
      o.split = SplitMode::by_length;
      o.chunk = chunk;
      const TapSet ref = engine_forward(m, tokens, o);
      ASSERT_EQ(test::gross_failure(ref), "");
      o.backend = Backend::cuda;
      EXPECT_EQ(bitwise_difference(ref, engine_forward(m, tokens, o)), "");
    }

  const Model mqa = test::tiny_model(test::tiny_config(7, 1, 10, RopeStyle::interleaved, true), test::test_seed());
  const int V = mqa.config.vocab;
  for (int batch : {1, 30, 45}) {
    SCOPED_TRACE("batch " + std::to_string(batch));
    EngineOptions o = options(Backend::cuda, FloatFormat::f16, FloatFormat::f16, 0);
    o.split = SplitMode::by_length;
    Engine gpu(mqa, o);
    o.backend = Backend::twin;
    Engine twin(mqa, o);
    expect_batched_decode_matches(gpu, twin, batch, V);
  }
}

// Engine::logprobs on the GPU (the log-softmax kernel over the device logits) equals the
// twin's, bit for bit, after a mixed prefill step and after batched decode steps. The
// vocabulary of 3001 gives each of the row's 256 threads several elements and a ragged
// end; the prefill row count (35) exercises many blocks.
TEST(GpuEngine, LogprobsMatchTwin) {
  SKIP_WITHOUT_CUDA();
  SCOPED_TRACE(test::seed_trace());
  ModelConfig c = test::tiny_config(4, 2, 16, RopeStyle::interleaved, false);
  c.vocab = 3001;
  const Model m = test::tiny_model(c, test::test_seed());
  Engine gpu(m, options(Backend::cuda, FloatFormat::f16, FloatFormat::bf16, 0));
  Engine twin(m, options(Backend::twin, FloatFormat::f16, FloatFormat::bf16, 0));
  std::vector<SequenceInput> step = {{0, test::prompt_tokens(30, c.vocab, 7)}, {1, test::prompt_tokens(5, c.vocab, 8)}};
  for (int s = 0; s < 2; ++s) {
    ASSERT_EQ(gpu.add_sequence(64), s);
    ASSERT_EQ(twin.add_sequence(64), s);
  }
  for (int round = 0; round < 4; ++round) {
    SCOPED_TRACE("step " + std::to_string(round));
    gpu.step(step);
    twin.step(step);
    const std::vector<float>& expected = twin.logprobs();
    const std::vector<float>& actual = gpu.logprobs();
    ASSERT_EQ(actual.size(), expected.size());
    ASSERT_EQ(actual.size(), std::size_t(round == 0 ? 35 : 2) * c.vocab);
    for (std::size_t j = 0; j < expected.size(); ++j)
      ASSERT_EQ(num::bits_of(actual[j]), num::bits_of(expected[j])) << "logprob " << j;
    step = {{1, {round + 1}}, {0, {2 * round + 5}}};
  }
}

// The tiered KV path (cuda/engine/kv_plan.h) against the twin, bit for bit: every
// registered format as the whole cache (the 64-element ones with one padded block per
// row of 32, quant/row_blocks.h), a hot window, KIVI (groups of 32 completing
// inside prefill chunks and during token-by-token decode), split K/V formats, FP8-style
// scales, rotations (rotate_heads_kernel on the fast and the tiered path), and q8_0
// weights; prompts crossing the 256-key split.
TEST(GpuEngine, TieredKvPoliciesMatchTwin) {
  SKIP_WITHOUT_CUDA();
  SCOPED_TRACE(test::seed_trace());
  ModelConfig c = test::tiny_config(4, 2, 16, RopeStyle::rotate_half, true);  // kv_dim 32
  c.hidden = 160;  // every matrix width a multiple of 32, for q8_0 weights
  const Model m = test::tiny_model(c, test::test_seed());
  const auto tokens = test::prompt_tokens(270, m.config.vocab, test::test_seed());
  std::vector<std::pair<std::string, std::string>> cases;  // (weights, kv)
  for (const quant::FormatInfo& f : quant::all_formats()) cases.push_back({"f32", f.name});
  for (const char* kv : {"k=q8_0+v=bf16+hot=37", "q8_0+kivi", "k=q8_0+v=f16+kivi+hot=5", "f16+hot=300",
                         "k=bf16+v=q8_0+scale=0.5", "q4_0+rot=hadamard:3", "tq3_32+rot=orthogonal:4+hot=5",
                         "f16+rot=hadamard"})
    cases.push_back({"f16", kv});
  cases.push_back({"q8_0", "q8_0+hot=3"});
  for (const auto& [weights, kv] : cases) {
    EngineOptions o;
    o.weights = test::weight_format(weights);
    o.kv = test::kv_spec(kv);
    o.backend = Backend::twin;
    const TapSet ref = engine_forward(m, tokens, o);
    ASSERT_EQ(test::gross_failure(ref), "") << kv;
    o.backend = Backend::cuda;
    for (int chunk : {0, 1, 7, 256}) {
      SCOPED_TRACE("weights " + weights + " kv " + kv + " chunk " + std::to_string(chunk));
      o.chunk = chunk;
      EXPECT_EQ(bitwise_difference(ref, engine_forward(m, tokens, o)), "");
    }
  }
}

// Forking a sequence in the middle of a KIVI group, then batched decode of source and
// fork, on the GPU and the twin: every step's logits and both caches (cache_values)
// agree bit for bit.
TEST(GpuEngine, TieredForkAndCacheValuesMatchTwin) {
  SKIP_WITHOUT_CUDA();
  SCOPED_TRACE(test::seed_trace());
  const Model m = test::tiny_model(test::tiny_config(4, 2, 16, RopeStyle::interleaved, false), test::test_seed());
  EngineOptions o;
  o.kv = test::kv_spec("q8_0+kivi+hot=3");  // the fork at 40 cuts the group of tokens 32..63
  on_gpu_and_twin(m, o, [&](Engine& gpu, Engine& twin) { expect_same_fork_and_decode(gpu, twin, m.config, 30); });
}

// Sampled generation reads the GPU's logits through the host sampler: the same tokens
// as the twin for a batch of prompts of different lengths, greedy and sampled.
TEST(GpuEngine, GenerateMatchesTwin) {
  SKIP_WITHOUT_CUDA();
  SCOPED_TRACE(test::seed_trace());
  const Model m = test::tiny_model(test::tiny_config(4, 2, 16, RopeStyle::rotate_half, true), test::test_seed());
  const std::vector<std::vector<int>> prompts = {test::prompt_tokens(37, m.config.vocab, test::test_seed()),
                                                 test::prompt_tokens(5, m.config.vocab, test::test_seed() + 1)};
  for (const SamplingParams& p : {SamplingParams{}, SamplingParams{0.9f, 50, 0.9f, 5}}) {
    const auto twin = generate_tokens(m, prompts, options(Backend::twin, FloatFormat::f16, FloatFormat::f16, 0), p, 12);
    EXPECT_EQ(generate_tokens(m, prompts, options(Backend::cuda, FloatFormat::f16, FloatFormat::f16, 0), p, 12), twin);
  }
}

// Latent attention (DeepSeek MLA; cuda_latent.cu): both decode paths over the cached
// rows in every registered format (plain, and block formats' decoded rows), one-shot,
// token by token and chunked, on the tiny-mla fixture; then a low-rank-free query with
// widths no SIMD step divides (kv_lora_rank 12, rope 4, v_head_dim 24) and 16 heads (the
// absorbed attention's one key head read by a group of 16). The taps include the
// probabilities each path's own scores give (LayerTaps::probs, computed on the GPU).
// The synthetic models' prompts cross a 256-key split (the fixture's 256 positions do not).
TEST(GpuEngine, LatentPathsMatchTwin) {
  SKIP_WITHOUT_CUDA();
  SCOPED_TRACE(test::seed_trace());
  std::vector<std::pair<std::string, Model>> models;
  models.emplace_back("tiny-mla", load_model(test::fixtures_dir() + "/tiny-mla"));
  ModelConfig odd = synthetic_shape("tiny-mla");
  apply_deepseek2(odd, 6, LatentAttention{0, 12, 4, 24});
  odd.max_seq = 300;
  models.emplace_back("odd widths", make_synthetic_model(odd, test::test_seed()));
  ModelConfig wide = synthetic_shape("tiny-mla");
  wide.n_heads = 16;
  apply_deepseek2(wide, 16, LatentAttention{24, 32, 8, 16});
  wide.max_seq = 300;
  models.emplace_back("16 heads", make_synthetic_model(wide, test::test_seed()));
  for (const auto& [name, m] : models) {
    const auto tokens = test::prompt_tokens(name == "tiny-mla" ? 200 : 270, 128, test::test_seed() + 3);
    std::vector<std::string> formats = {"f16", "q8_0"};
    if (name == "tiny-mla")
      for (const quant::FormatInfo& f : quant::all_formats())
        if (f.name != std::string("f16") && f.name != std::string("q8_0")) formats.push_back(f.name);
    for (const std::string& kv : formats)
      for (LatentPath path : {LatentPath::reconstruct, LatentPath::absorb}) {
        EngineOptions o;
        o.weights = test::weight_format("bf16");
        o.kv = test::kv_spec(kv);
        o.latent = path;
        o.backend = Backend::twin;
        const TapSet ref = engine_forward(m, tokens, o);
        ASSERT_EQ(test::gross_failure(ref), "") << name << " " << kv;
        o.backend = Backend::cuda;
        for (int chunk : {0, 1, 7}) {
          SCOPED_TRACE(name + " kv " + kv + " " + to_string(path) + " chunk " + std::to_string(chunk));
          o.chunk = chunk;
          EXPECT_EQ(bitwise_difference(ref, engine_forward(m, tokens, o)), "");
        }
      }
  }
}

// A latent cache forked mid-sequence, then batched decode of source and fork: the
// logits of every step and both caches (the rows' reconstructions) the twin's bits.
TEST(GpuEngine, LatentForkAndCacheValuesMatchTwin) {
  SKIP_WITHOUT_CUDA();
  SCOPED_TRACE(test::seed_trace());
  const Model m = load_model(test::fixtures_dir() + "/tiny-mla");
  for (LatentPath path : {LatentPath::reconstruct, LatentPath::absorb}) {
    SCOPED_TRACE(to_string(path));
    EngineOptions o;
    o.kv = test::kv_spec("q8_0");
    o.latent = path;
    on_gpu_and_twin(m, o, [&](Engine& gpu, Engine& twin) { expect_same_fork_and_decode(gpu, twin, m.config, 20); });
  }
}

// Two sequences in one batch, one growing by two tokens a step and one by one, for
// `steps` steps under an evicting policy: every step's logits, then both sequences'
// evictions and caches, the twin's bits.
void expect_same_batched_eviction(const Model& m, const EngineOptions& o, int steps) {
  on_gpu_and_twin(m, o, [&](Engine& gpu, Engine& twin) {
    const int V = m.config.vocab;
    for (Engine* e : {&gpu, &twin}) {
      e->add_sequence(2 * steps);
      e->add_sequence(2 * steps);
    }
    for (int d = 0; d < steps; ++d)
      expect_same_step(gpu, twin, {{0, {(7 * d + 2) % V, (3 * d) % V}}, {1, {(5 * d + 1) % V}}}, d);
    for (int seq : {0, 1}) {
      EXPECT_EQ(gpu.evictions(seq), twin.evictions(seq));
      expect_same_caches(gpu, twin, seq, m.config.n_layers);
    }
  });
}

// A short evicting run (the CPU suite runs it on the emulated engine too): the window
// cache of a windowed fixture, and per-layer H2O budgets in q8_0 beside a hot window;
// one-shot and token-by-token taps, then batched steps of two sequences, their
// evictions and caches, the twin's bits.
TEST(GpuEngine, EvictionShortRunMatchesTwin) {
  SKIP_WITHOUT_CUDA();
  SCOPED_TRACE(test::seed_trace());
  const auto tokens = test::prompt_tokens(20, 128, test::test_seed() + 5);
  for (const auto& [fixture, kv] : {std::pair<const char*, const char*>{"tiny-mistral", "f16+evict=window"},
                                    std::pair<const char*, const char*>{"tiny-llama", "q8_0+evict=h2o:4/9+hot=3"}}) {
    SCOPED_TRACE(std::string(fixture) + " kv " + kv);
    const Model m = load_model(test::fixtures_dir() + "/" + fixture);
    EngineOptions o;
    o.kv = test::kv_spec(kv);
    o.backend = Backend::twin;
    const TapSet ref = engine_forward(m, tokens, o);
    ASSERT_EQ(test::gross_failure(ref), "");
    o.backend = Backend::cuda;
    for (int chunk : {0, 1}) {
      o.chunk = chunk;
      EXPECT_EQ(bitwise_difference(ref, engine_forward(m, tokens, o)), "") << "chunk " << chunk;
    }
    expect_same_batched_eviction(m, o, 12);
  }
}

// Evicting caches (cuda_eviction.cu): every policy of eviction_spec.h, plain, block and
// rotated formats, a hot window beside the slots, per-layer budgets; and the window cache
// of the windowed fixtures. Their taps (the probabilities the GPU's attention weighted
// by), the logits of a batched run, the evictions and the caches: the twin's.
TEST(GpuEngine, EvictionMatchesTwin) {
  SKIP_WITHOUT_CUDA();
  SCOPED_TRACE(test::seed_trace());
  const auto tokens = test::prompt_tokens(200, 128, test::test_seed() + 4);  // the fixtures hold 256 positions
  struct Case {
    const char* fixture;
    const char* kv;
  };
  for (const Case& k : {Case{"tiny-llama", "f16+evict=tova:4"}, Case{"tiny-llama", "bf16+evict=h2o:4/9"},
                        Case{"tiny-llama", "f32+evict=knorm:5"}, Case{"tiny-llama", "f16+evict=snapkv:6,3,3"},
                        Case{"tiny-llama", "f16+evict=streaming:2,5"}, Case{"tiny-llama", "q8_0+evict=h2o:15+hot=4"},
                        Case{"tiny-qwen2", "q4_0+rot=hadamard+evict=tova:7"}, Case{"tiny-mistral", "f16+evict=window"},
                        Case{"tiny-gemma2", "bf16+evict=window"}}) {
    SCOPED_TRACE(std::string(k.fixture) + " kv " + k.kv);
    const Model m = load_model(test::fixtures_dir() + "/" + k.fixture);
    EngineOptions o;
    o.weights = test::weight_format("f16");
    o.kv = test::kv_spec(k.kv);
    o.backend = Backend::twin;
    const TapSet ref = engine_forward(m, tokens, o);
    ASSERT_EQ(test::gross_failure(ref), "");
    o.backend = Backend::cuda;
    for (int chunk : {0, 1, 7}) {
      SCOPED_TRACE("chunk " + std::to_string(chunk));
      o.chunk = chunk;
      EXPECT_EQ(bitwise_difference(ref, engine_forward(m, tokens, o)), "");
    }
    expect_same_batched_eviction(m, o, 40);
  }
}

}  // namespace
}  // namespace kvfid::engine
