// The native baseline is the MPFR emulation, bit for bit: every tap of whole forwards
// over the committed fixtures, a generated reduced real shape and random shapes, in each
// arithmetic format, with plain, quantized, hot-window and KIVI KV caches and plain and
// block weight formats (whose decoded values binary32 may not hold). The oracle is
// emulated_forward_mpfr (reference/native/emulated_forward.h), the specification.
#include "reference/native/native_forward.h"

#include <algorithm>
#include <cstring>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "reference/calibration/kv_policy_fit.h"
#include "reference/io/load_model.h"
#include "reference/io/prompt.h"
#include "reference/model/weight_storage.h"
#include "reference/native/emulated_forward.h"
#include "reference/synth/synthetic_model.h"
#include "tests/common/generated_fixtures.h"
#include "tests/common/test_env.h"
#include "tests/reference/mp/mp_test_util.h"

namespace kvfid::ref {
namespace {

void expect_identical(const TapSet& native, const TapSet& mpfr, const std::string& label) {
  ASSERT_EQ(native.size(), mpfr.size()) << label;
  for (std::size_t i = 0; i < mpfr.size(); ++i) {
    ASSERT_EQ(native[i].name, mpfr[i].name) << label;
    ASSERT_EQ(native[i].shape, mpfr[i].shape) << label << " " << mpfr[i].name;
    ASSERT_EQ(native[i].values.size(), mpfr[i].values.size()) << label << " " << mpfr[i].name;
    for (std::size_t j = 0; j < mpfr[i].values.size(); ++j) {
      std::uint64_t a, b;
      std::memcpy(&a, &native[i].values[j], 8);
      std::memcpy(&b, &mpfr[i].values[j], 8);
      ASSERT_EQ(a, b) << label << " " << mpfr[i].name << "[" << j << "]: native " << native[i].values[j] << ", MPFR "
                      << mpfr[i].values[j];
    }
  }
}

// The emulation of arithmetic f with weights and KV cache stored per the named format
// and policy.
Emulation emulation(FloatFormat f, const std::string& weights, const std::string& kv) {
  return {f, weight_format_from_string(weights, "test"), quant::parse_kv_policy_spec(kv, "test"), {}};
}

void expect_native_is_mpfr(const Model& model, const std::vector<int>& tokens, FloatFormat f, const std::string& weights,
                           const std::string& kv, const std::string& label) {
  const Emulation e = emulation(f, weights, kv);
  const std::string what = label + " arith " + to_string(f) + " weights " + weights + " kv " + kv;
  expect_identical(emulated_forward(model, tokens, e, TapSelection::all),
                   emulated_forward_mpfr(model, tokens, e, TapSelection::all), what);
}

const FloatFormat kFormats[] = {FloatFormat::f32, FloatFormat::f16, FloatFormat::bf16};

TEST(NativeForward, CommittedFixturesMatchTheMpfrEmulation) {
  const std::vector<int> tokens = read_prompt_file(test::fixtures_dir() + "/prompts/short.tokens");
  for (const char* name : {"tiny-llama", "tiny-qwen2", "tiny-mqa"}) {
    const Model model = load_model(test::fixtures_dir() + "/" + name);
    for (FloatFormat f : kFormats)
      for (const auto& [weights, kv] : {std::pair{"f32", "f32"}, {"bf16", "f16"}, {"f16", "bf16"}, {"f32", "q8_0"},
                                        {"f32", "int4a_32+kivi"}, {"bf16", "k=int8_32+v=f16+hot=3"},
                                        {"bf16", "bf16+hot=3"}})
        expect_native_is_mpfr(model, tokens, f, weights, kv, name);
  }
}

// The architectures beyond Llama and Qwen2: Llama 3's scaled RoPE frequencies, Qwen3's
// per-head q/k norms, Mistral's sliding window (binary16 then takes the scalar path) and
// Gemma 2's block (embed scale, 1 + w gains, post-norms, GeGLU's tanh, the score scale,
// both soft-caps, a window on layer 0 and the vectorized binary16 path on layer 1), in
// every arithmetic format (one storage pair each, to keep the sanitized run short: the
// committed-fixture sweep above covers the storage formats).
TEST(NativeForward, NewerArchitecturesMatchTheMpfrEmulation) {
  const std::vector<int> tokens = read_prompt_file(test::fixtures_dir() + "/prompts/short.tokens");
  for (const char* name : {"tiny-llama3", "tiny-qwen3", "tiny-mistral", "tiny-gemma2"}) {
    const Model model = load_model(test::fixtures_dir() + "/" + name);
    for (FloatFormat f : kFormats) expect_native_is_mpfr(model, tokens, f, "bf16", "f16", name);
  }
}

// Rotated policies (reference/mp/kv_rotate.h): the plain rotation products and the
// model-basis k and v taps, in every arithmetic format.
TEST(NativeForward, RotatedPoliciesMatchTheMpfrEmulation) {
  const std::vector<int> tokens = read_prompt_file(test::fixtures_dir() + "/prompts/short.tokens");
  for (const char* name : {"tiny-llama", "tiny-qwen3"}) {
    const Model model = load_model(test::fixtures_dir() + "/" + name);
    for (FloatFormat f : kFormats)
      for (const char* kv : {"q4_0+rot=hadamard:2", "k=int8_32+v=f16+hot=3+rot=orthogonal:1"})
        expect_native_is_mpfr(model, tokens, f, "bf16", kv, name);
  }
}

// Block weight formats decode to float64 values binary32 may not hold (int8a: up to 48
// bits), which the native products must round to odd first; tiny-mqa's widths (64, 160)
// are whole blocks.
TEST(NativeForward, BlockWeightFormatsMatchTheMpfrEmulation) {
  const std::vector<int> tokens = read_prompt_file(test::fixtures_dir() + "/prompts/short.tokens");
  const Model model = load_model(test::fixtures_dir() + "/tiny-mqa");
  for (FloatFormat f : kFormats)
    for (const char* weights : {"q8_0", "int8a_32", "int4a_32"})
      expect_native_is_mpfr(model, tokens, f, weights, "fp8_e4m3+scale=0.25", "tiny-mqa");
}

// A block whose offset has bits far below its scale's decodes (int8a: q dh + mh) to
// values binary32 cannot hold: the products of such a row take the rounding-to-odd path.
TEST(NativeForward, WeightsBeyondBinary32MatchTheMpfrEmulation) {
  ModelConfig c = test::tiny_config();
  c.dim = 64, c.hidden = 64, c.head_dim = 16;  // whole 32-element blocks everywhere
  Model model = make_synthetic_model(c, test::test_seed());
  for (int j = 0; j < 32; ++j)  // row 0's first block: from 2^-8 + 2^-18 (its FP16 offset) up to ~234
    model.layers[0].wq.element(0, j) = j == 0 ? 0x1p-8 + 0x1p-18 : j * 7.3125;
  const Model stored = stored_model(model, weight_format_from_string("int8a_32", "test"));
  std::vector<double> row(std::size_t(c.dim));
  stored.layers[0].wq.decode_row(0, row.data());
  ASSERT_TRUE(std::any_of(row.begin(), row.end(), [](double w) { return double(float(w)) != w; }))
      << "no decoded weight beyond binary32: the test checks nothing special";
  const std::vector<int> tokens = {3, 17, 0, 31, 9};
  for (FloatFormat f : kFormats) expect_native_is_mpfr(model, tokens, f, "int8a_32", "f32", "int8a_32 wide block");
}

TEST(NativeForward, LongerPromptMatchesTheMpfrEmulation) {
  const std::vector<int> tokens = read_prompt_file(test::fixtures_dir() + "/prompts/medium.tokens");
  const Model model = load_model(test::fixtures_dir() + "/tiny-qwen2");
  for (FloatFormat f : kFormats) expect_native_is_mpfr(model, tokens, f, "f32", "f32", "tiny-qwen2 medium");
}

// A reduced real shape (Qwen2.5-0.5B's widths, one layer), generated from its recipe:
// 896 wide, 14/2 heads of 64, hidden 4864, q/k/v bias, tied classifier, BF16 file.
TEST(NativeForward, GeneratedRealShapeMatchesTheMpfrEmulation) {
  const Model model = load_model(test::ensure_model("fixtures/generated/qwen2.5-0.5b-l1-v256"));
  const std::vector<int> tokens = {39, 113};  // the MPFR emulation costs ~2 s per token and format here
  for (FloatFormat f : kFormats) expect_native_is_mpfr(model, tokens, f, "f32", "f32", "qwen2.5-0.5b-l1-v256");
}

// Random shapes: GQA ratios, head widths, both RoPE styles, biases, tied or not, and
// token counts on both sides of the binary32 kernel's 32-token block.
TEST(NativeForward, RandomShapesMatchTheMpfrEmulation) {
  SCOPED_TRACE(test::seed_trace());
  std::mt19937_64 rng(test::test_seed());
  auto pick = [&](std::initializer_list<int> v) { return *(v.begin() + rng() % v.size()); };
  for (int i = 0; i < 6; ++i) {
    ModelConfig c;
    c.head_dim = pick({8, 16, 32});
    c.n_kv_heads = pick({1, 2});
    c.n_heads = c.n_kv_heads * pick({1, 2, 3, 7});
    c.dim = pick({32, 64, 96});
    c.hidden = pick({32, 64, 160});
    c.vocab = 48, c.n_layers = 2, c.max_seq = 64;
    c.rms_norm_eps = pick({1, 5}) * 1e-6, c.rope_theta = pick({10000, 1000000});
    c.rope = rng() % 2 ? RopeStyle::interleaved : RopeStyle::rotate_half;
    c.qkv_bias = rng() % 2, c.tied_classifier = rng() % 2;
    c.arch = c.qkv_bias ? Arch::qwen2 : Arch::llama;
    const Model model = make_synthetic_model(c, rng());
    std::vector<int> tokens(std::size_t(pick({1, 5, 31, 32, 33, 40})));
    for (int& t : tokens) t = int(rng() % std::uint64_t(c.vocab));
    const FloatFormat f = kFormats[rng() % 3];
    const bool whole_blocks = c.q_dim() % 32 == 0;  // dim and hidden are multiples of 32
    const char* weights = rng() % 2 ? "bf16" : whole_blocks ? "int8a_32" : "f32";
    const char* kv = rng() % 2 ? "f32" : rng() % 2 ? "int4_32+hot=4" : "int4_32+rot=orthogonal:3";
    // Shapes 0 and 3 get Gemma 2's block, with caps that bind (tiny-gemma2's), a window of
    // 3 on layer 0 and post-norm gains of 1.25.
    Model m = model;
    if (i % 3 == 0) {
      m.config.sliding_window = 3;
      apply_gemma2(m.config, c.head_dim + 8, 4.0, 3.0);
      for (LayerWeights& w : m.layers) w.post_attn_norm = w.post_ffn_norm = std::vector<double>(std::size_t(c.dim), 0.25);
    }
    expect_native_is_mpfr(m, tokens, f, weights, kv, "random shape " + std::to_string(i) + (m.config.sandwich_norms ? " (gemma2)" : ""));
  }
}

// Values beyond binary16's range (a scaled embedding) overflow to Inf and then NaN in
// both computations alike.
TEST(NativeForward, OverflowMatchesTheMpfrEmulation) {
  Model model = load_model(test::fixtures_dir() + "/tiny-mqa");
  for (double& w : model.embedding.mutable_values()) w *= 4096;
  const std::vector<int> tokens = read_prompt_file(test::fixtures_dir() + "/prompts/short.tokens");
  const TapSet taps = emulated_forward(model, tokens, emulation(FloatFormat::f16, "f32", "f32"), TapSelection::all);
  int non_finite = 0;
  for (const TapTensor& t : taps)
    for (double v : t.values) non_finite += !std::isfinite(v);
  EXPECT_GT(non_finite, 0) << "the scaled model no longer overflows binary16: the test checks nothing special";
  expect_native_is_mpfr(model, tokens, FloatFormat::f16, "f32", "f32", "tiny-mqa x4096");
}

// A selection keeps exactly the taps it names, with the same values.
TEST(NativeForward, TapSelectionsMatchTheMpfrEmulation) {
  const Model model = load_model(test::fixtures_dir() + "/tiny-llama");
  const std::vector<int> tokens = read_prompt_file(test::fixtures_dir() + "/prompts/short.tokens");
  const Emulation e = emulation(FloatFormat::bf16, "f32", "f16");
  for (const char* spec : {"logits", "logits,layers.1.*", "layers.0.attn.probs,layers.1.k"}) {
    const TapSelection selection = tap_selection_from_string(spec, "test");
    const TapSet native = emulated_forward(model, tokens, e, selection);
    EXPECT_EQ(native.size(), tap_specs(model.config, int(tokens.size()), selection).size()) << spec;
    expect_identical(native, emulated_forward_mpfr(model, tokens, e, selection), spec);
  }
}

// Each output is one thread's sequential sum: any thread count gives the same bits.
TEST(NativeForward, ThreadCountDoesNotChangeTheBits) {
  const Model model = load_model(test::fixtures_dir() + "/tiny-qwen2");
  const Model stored = stored_model(model, weight_format_from_string("f32", "test"));
  const quant::KvPolicy kv = quant::resolve_kv_policy(quant::parse_kv_policy_spec("f32", "test"), {}, model.config);
  const std::vector<int> tokens = read_prompt_file(test::fixtures_dir() + "/prompts/medium.tokens");
  for (FloatFormat f : kFormats) {
    const TapSet one = native::native_forward(stored, tokens, f, kv, TapSelection::all, 1);
    for (int threads : {2, 3, 5}) {
      SCOPED_TRACE(threads);
      expect_identical(native::native_forward(stored, tokens, f, kv, TapSelection::all, threads), one,
                       to_string(f) + " threads " + std::to_string(threads));
    }
  }
}

}  // namespace
}  // namespace kvfid::ref
