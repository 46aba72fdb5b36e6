// The gate for quantized storage: on every fixture, the twin's taps and logits against
// the MPFR golden of that quantized configuration (the exact forward of what the engine
// stores) pass the same gate as `kvfid check` (reference/metrics/gate.h: the engine at
// most kGateFactor times as wrong as the plain FP32 algorithm over the same storage,
// bounds above their rounding floors; the k and v taps, stored values, also above one
// storage step: reference/metrics/kv_storage_floor.h). Cases: every registered format
// as the whole cache on tiny-llama, and every block format of 32 also on tiny-qwen2, whose
// K/V row of 16 elements gets one padded block each (quant/row_blocks.h); and the
// policy shapes -- per-layer edges, a hot window, KIVI with and without one, split K
// and V formats, padded blocks under a hot window, rotations, evictions, window caches --
// plus q8_0 weights.
#include <gtest/gtest.h>

#include "cuda/engine/engine_forward.h"
#include "reference/calibration/kv_policy_fit.h"
#include "reference/formats/quant/registry.h"
#include "reference/io/load_model.h"
#include "reference/io/prompt.h"
#include "reference/metrics/fidelity_report.h"
#include "reference/native/emulated_forward.h"
#include "reference/mp/golden_forward.h"
#include "tests/common/test_env.h"
#include "tests/common/typed_options.h"

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below
namespace {

struct GateCase {
  std::string fixture;
  std::string weights;
  std::string kv;
  int tokens;  // 34 where KIVI needs a complete group of 32 keys and more; else 12
};

void PrintTo(const GateCase& c, std::ostream* os) {
  *os << c.fixture << " --weights " << c.weights << " --kv " << c.kv << ", " << c.tokens << " tokens";
}

std::vector<GateCase> gate_cases() {
  std::vector<GateCase> cases;
  // tiny-llama's K/V row has 64 elements, tiny-qwen2's and tiny-mqa's 16: there every
  // block format of 32 elements runs with one padded block per row (blocks of 64 and 128
  // would be three quarters padding or more, and tiny-llama runs them whole).
  for (const quant::FormatInfo& f : quant::all_formats()) {
    cases.push_back({"tiny-llama", "f32", f.name, 12});
    if (f.block == 32) cases.push_back({"tiny-qwen2", "f32", f.name, 12});
  }
  cases.push_back({"tiny-llama", "f32", "q8_0+edges=1:f16", 12});
  cases.push_back({"tiny-llama", "f32", "k=q8_0+v=bf16+hot=5", 12});
  cases.push_back({"tiny-llama", "f32", "q8_0+kivi", 34});
  cases.push_back({"tiny-qwen2", "f32", "k=q8_0+v=bf16+kivi+hot=3", 34});
  cases.push_back({"tiny-qwen2", "f32", "k=int4a_64+v=q4_0+hot=4", 12});
  cases.push_back({"tiny-mqa", "q8_0", "f32", 12});  // tiny-mqa's matrix widths (64, 160) are multiples of 32
  cases.push_back({"tiny-mqa", "q8_0", "k=q8_0+v=f16+kivi+hot=6", 34});
  // Rotations (kv_rotation.h): the golden stores the forms of the exactly rotated K and V.
  cases.push_back({"tiny-llama", "f32", "q4_0+rot=hadamard", 12});
  cases.push_back({"tiny-llama", "f32", "int4_32+rot=hadamard:3", 12});
  cases.push_back({"tiny-qwen2", "f32", "q8_0+rot=orthogonal:5", 12});
  cases.push_back({"tiny-qwen3", "f32", "k=int4_32+v=q8_0+rot=hadamard:8+hot=3", 12});
  cases.push_back({"tiny-qwen2", "f32", "k=q8_0+v=bf16+kivi+hot=3+rot=hadamard", 34});
  // Evictions (eviction_spec.h): the golden applies the policy with exact scores, so the
  // gate passes only where the twin's FP32 scores keep the same keys.
  cases.push_back({"tiny-llama", "f32", "f32+evict=h2o:5", 12});
  cases.push_back({"tiny-llama", "f32", "bf16+evict=streaming:2,5", 12});
  cases.push_back({"tiny-llama", "f32", "q8_0+evict=tova:4+hot=2", 12});
  cases.push_back({"tiny-qwen2", "f32", "f16+evict=snapkv:5,2,3", 12});
  cases.push_back({"tiny-qwen3", "f32", "int4_32+evict=knorm:5+rot=hadamard", 12});
  cases.push_back({"tiny-mqa", "f32", "q4_0+evict=h2o:50%", 12});
  cases.push_back({"tiny-qwen2", "f32", "q8_0+evict=tova:3/7", 12});  // a budget per layer
  // The window caches of the windowed fixtures (windows 5 and 6 under 12 tokens).
  cases.push_back({"tiny-gemma2", "f32", "f16+evict=window", 12});
  cases.push_back({"tiny-mistral", "f32", "q8_0+evict=window+hot=2", 12});
  return cases;
}

class QuantGate : public ::testing::TestWithParam<GateCase> {};

TEST_P(QuantGate, TwinPassesAgainstTheGoldenOfItsStorage) {
  const GateCase& c = GetParam();
  const Model model = load_model(test::fixtures_dir() + "/" + c.fixture);
  std::vector<int> tokens = read_prompt_file(test::fixtures_dir() + "/prompts/medium.tokens");
  tokens.resize(std::size_t(c.tokens));

  GoldenOptions golden_options;
  golden_options.weights = test::weight_format(c.weights);
  golden_options.kv = test::kv_spec(c.kv);
  const TapSet golden = compute_golden(model, tokens, golden_options).taps;
  EngineOptions engine;
  engine.weights = *golden_options.weights;
  engine.kv = *golden_options.kv;
  const TapSet candidate = engine_forward(model, tokens, engine);
  const TapSet baseline = emulated_forward(model, tokens, {FloatFormat::f32, engine.weights, engine.kv}, TapSelection::all);
  const quant::KvPolicy policy = quant::resolve_kv_policy(engine.kv, {}, model.config);
  const FidelityReport report =
      build_fidelity_report(golden, candidate, baseline, {FloatFormat::f32, FloatFormat::f32, policy});
  ASSERT_FALSE(report.rows.empty());
  for (const GrossFinding& f : report.findings) ADD_FAILURE() << f.subject << " " << f.tap << ": " << f.detail;
  for (const ReportRow& r : report.rows)
    EXPECT_TRUE(r.pass) << r.tap << " " << r.metric << " " << r.value << " > bound " << r.bound << " (baseline "
                        << r.baseline << ")";
}

// A rotation is orthogonal (exactly, or within FP32's rounding: kv_rotation.h), so with
// FP32 storage it changes nothing but roundings: the twin under f32+rot=R passes the gate
// against the golden of the unrotated model, with the plain FP32 algorithm's baseline.
TEST(QuantGateRotation, F32StorageRotatedIsTheUnrotatedModelWithinTheGate) {
  std::vector<int> tokens = read_prompt_file(test::fixtures_dir() + "/prompts/medium.tokens");
  tokens.resize(12);
  for (const char* fixture : {"tiny-llama", "tiny-qwen2", "tiny-qwen3"}) {
    const Model model = load_model(test::fixtures_dir() + "/" + fixture);
    const TapSet golden = compute_golden(model, tokens, GoldenOptions{}).taps;
    const TapSet baseline = emulated_forward(model, tokens, {}, TapSelection::all);
    for (const char* rot : {"f32+rot=hadamard", "f32+rot=hadamard:3", "f32+rot=orthogonal:5"}) {
      EngineOptions engine;
      engine.kv = test::kv_spec(rot);
      const TapSet candidate = engine_forward(model, tokens, engine);
      const FidelityReport report = build_fidelity_report(golden, candidate, baseline, {FloatFormat::f32, FloatFormat::f32});
      ASSERT_FALSE(report.rows.empty());
      for (const GrossFinding& f : report.findings) ADD_FAILURE() << fixture << " " << rot << ": " << f.tap << " " << f.detail;
      for (const ReportRow& r : report.rows)
        EXPECT_TRUE(r.pass) << fixture << " " << rot << ": " << r.tap << " " << r.metric << " " << r.value << " > bound "
                            << r.bound << " (baseline " << r.baseline << ")";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, QuantGate, ::testing::ValuesIn(gate_cases()), [](const auto& info) {
  return test::param_name(info.param.fixture + "_" + info.param.weights + "_" + info.param.kv);
});

}  // namespace
}  // namespace kvfid::engine
