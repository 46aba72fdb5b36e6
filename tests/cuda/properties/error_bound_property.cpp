// Property 7, within error bounds rather than bitwise:
//  - softmax attention is invariant to adding a constant to every score, within the
//    FP32 rounding bound derived below (the engine's per-row reduction, attention_math.h);
//  - attention over identical keys returns the mean of the values (through the engine:
//    a model whose K projection is zero), within the bound of summing them in FP32;
//  - the engine passes the `kvfid check` gate (baseline rule of build_fidelity_report)
//    against the MPFR golden on the fixture shapes (tiny-llama, tiny-qwen2, tiny-mqa)
//    with random seeds, tokens, weight and KV formats.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "cuda/common/attention_math.h"
#include "cuda/engine/engine_forward.h"
#include "reference/metrics/fidelity_report.h"
#include "reference/native/emulated_forward.h"
#include "reference/mp/golden_forward.h"
#include "reference/synth/synthetic_shapes.h"
#include "tests/cuda/properties/generators.h"
#include "tests/common/typed_options.h"
#include "tests/cuda/properties/property_check.h"
#include "tests/cuda/properties/sequence_rows.h"

namespace kvfid::test {
using namespace kvfid::ref;  // the specification's types
using namespace kvfid::engine;  // the engine under test
namespace num = kvfid::engine::num;  // the engine's arithmetic (which sees the numeric core's too)
namespace {
constexpr double kUnitRoundoff = 0x1p-24;  // u: FP32 round to nearest
// gamma_k = k u / (1 - k u): the relative error bound of a k-term FP32 sum (Higham 3.1).
double sum_gamma(int k) { return k * kUnitRoundoff / (1 - k * kUnitRoundoff); }

// attention_math.h alone, the same on either backend: the twin registration tests it.
// exp_portable is faithful (< 1 ulp, tests/cuda/common/portable_math_test.cpp), and an
// ulp is at most 2u of the value: relative error < 2u.
constexpr double kExpRelativeError = 2 * kUnitRoundoff;

// One query row's attention output by the engine's reduction (attention_math.h, as the
// twin runs it): splits of kSplit keys; per split m_s = max (warp butterflies, then
// warps in order), p_j = exp(score_j - m_s), l_s = sum p_j, acc_s[d] = fma chain over
// the keys; splits folded in order with fold_factors/fold_value; out[d] = acc[d] / l.
std::vector<float> attend(const std::vector<float>& scores, const std::vector<float>& values, int width) {
  const int n = int(scores.size());
  std::vector<float> acc(width), split_acc(width), p(num::kSplit);
  num::SoftmaxStats run{};
  for (int s = 0; s < num::split_count(n); ++s) {
    const int j0 = s * num::kSplit, j1 = std::min(n, j0 + num::kSplit);
    float lanes[num::kWarp];
    float m = 0, l = 0;
    for (int w = 0; w * num::kWarp < j1 - j0; ++w) {
      for (int i = 0; i < num::kWarp; ++i)
        lanes[i] = j0 + w * num::kWarp + i < j1 ? scores[j0 + w * num::kWarp + i] : -num::infinity();
      const float wm = num::butterfly_host<num::Max>(lanes);
      m = w == 0 ? wm : num::max(m, wm);
    }
    for (int j = j0; j < j1; ++j) p[j - j0] = num::exp_portable(scores[j] - m);
    for (int w = 0; w * num::kWarp < j1 - j0; ++w) {
      for (int i = 0; i < num::kWarp; ++i) lanes[i] = j0 + w * num::kWarp + i < j1 ? p[w * num::kWarp + i] : 0.0f;
      const float ws = num::butterfly_host<num::Add>(lanes);
      l = w == 0 ? ws : l + ws;
    }
    for (int d = 0; d < width; ++d) {
      float a = 0.0f;
      for (int j = j0; j < j1; ++j) a = num::fma(p[j - j0], values[std::size_t(j) * width + d], a);
      split_acc[d] = a;
    }
    if (s == 0) {
      run = {m, l};
      acc = split_acc;
    } else {
      const num::FoldFactors f = num::fold_factors(run.m, m);
      for (int d = 0; d < width; ++d) acc[d] = num::fold_value(acc[d], split_acc[d], f);
      run = {f.m, num::fold_value(run.l, l, f)};
    }
  }
  for (float& a : acc) a = num::div(a, run.l);
  return acc;
}

// Error bound of attend() against the exact softmax-weighted mean, for scores whose
// magnitudes (after any shift) are at most S:
//  - each exp argument (score - m_s, or a difference of maxima in a fold) is a
//    difference of floats that each carry at most u S rounding from the shift, then
//    rounded once: off by at most 4 u S; exp then adds < 2u. A key's effective weight
//    is the product of its own exp and one fold factor per later split, so it is off
//    by a relative theta <= splits (4 u S + 2u) (first order);
//  - perturbing the weights of a weighted mean by relative theta moves it by at most
//    2 theta max|v|;
//  - the numerator and the denominator are each sums of n terms plus two roundings
//    per fold (gamma_{n + 2 splits} relative each, so 2 gamma max|v| on the quotient),
//    and the division rounds once (u |out| <= u max|v|).
// The 1.01 factor covers the second-order terms (theta, gamma < 1e-3 here).
double attend_bound(double S, int n, double max_v) {
  const int splits = num::split_count(n);
  const double theta = splits * (4 * kUnitRoundoff * S + kExpRelativeError);
  return 1.01 * max_v * (2 * theta + 2 * sum_gamma(n + 2 * splits) + kUnitRoundoff);
}

// Floats k * step (rounded) for integers |k| <= range: off any coarse grid, so shifting
// them rounds.
rc::Gen<std::vector<float>> gen_floats(std::size_t count, int range, float step) {
  return rc::gen::map(rc::gen::container<std::vector<int>>(count, rc::gen::inRange(-range, range + 1)),
                      [step](const std::vector<int>& k) {
                        std::vector<float> f(k.size());
                        for (std::size_t i = 0; i < k.size(); ++i) f[i] = float(k[i]) * step;
                        return f;
                      });
}

TEST(PropertyErrorBounds, SoftmaxInvariantToScoreShift) {
  KVFID_BACKEND_INDEPENDENT();
  double worst = 0;  // largest |difference| / bound seen
  check_property(1000, [&] {
    const int n = *rc::gen::inRange(1, 3 * num::kSplit);  // up to three splits
    const int width = *rc::gen::inRange(1, 5);
    const auto scores = *gen_floats(std::size_t(n), 1 << 24, 20.0f / (1 << 24) * 1.1f);  // |s| <= 22
    const auto values = *gen_floats(std::size_t(n) * width, 1 << 24, 4.0f / (1 << 24) * 1.1f);  // |v| <= 4.4
    const float shift = (*gen_floats(1, 1 << 24, 64.0f / (1 << 24) * 1.1f))[0];  // |c| <= 70.4
    std::vector<float> shifted(n);
    double max_s = 0, max_v = 0;
    for (int j = 0; j < n; ++j) {
      shifted[j] = scores[j] + shift;
      max_s = std::max(max_s, double(std::fabs(scores[j])));
    }
    for (float v : values) max_v = std::max(max_v, double(std::fabs(v)));
    const auto a = attend(scores, values, width), b = attend(shifted, values, width);
    const double bound = attend_bound(max_s, n, max_v) + attend_bound(max_s + std::fabs(shift), n, max_v);
    for (int d = 0; d < width; ++d) {
      if (!std::isfinite(a[d]) || !std::isfinite(b[d])) RC_FAIL("non-finite attention output");
      const double diff = std::fabs(double(a[d]) - double(b[d]));
      worst = std::max(worst, bound > 0 ? diff / bound : 0.0);
      if (diff > bound) RC_FAIL("dim " + std::to_string(d) + ": |" + std::to_string(a[d]) + " - " + std::to_string(b[d]) +
                                "| > bound " + std::to_string(bound));
    }
  });
  std::printf("[property] worst |shifted - unshifted| / bound: %.3g\n", worst);
}

TEST(PropertyErrorBounds, IdenticalKeysGiveMeanOfValues) {
  KVFID_REQUIRE_BACKEND();
  double worst = 0;
  check_property(60, [&] {
    ModelCase mc = *gen_model_case();
    mc.latent = {};  // the keys zeroed below are wk's
    const int length = *gen_length();
    const auto tokens = *gen_tokens(length, mc.vocab);
    Model m = mc.model(kMaxSeq);
    // K = 0 for every token: every score is q . 0 = 0, all keys identical.
    for (LayerWeights& w : m.layers) {
      std::ranges::fill(w.wk.mutable_values(), 0.0);
      std::fill(w.bk.begin(), w.bk.end(), 0.0);
    }
    const ModelConfig& c = m.config;
    const SequenceRows r = run_one_shot(m, mc.options(backend_under_test()), tokens);
    const std::string gross = rows_gross_failure(r);
    if (!gross.empty()) RC_FAIL(gross);
    for (int l = 0; l < c.n_layers; ++l) {
      const LayerTaps& t = r.layers[l];
      for (int row = 0; row < length; ++row)
        for (int h = 0; h < c.n_heads; ++h) {
          // The keys read: first .. row (a sliding window may start past 0).
          const int first = c.first_key(l, row), n = row + 1 - first, kvh = c.kv_head_of(h);
          // p_j = exp(0) = 1 exactly, so m = 0 and l = n exactly.
          const float m_stat = t.stats[(std::size_t(row) * c.n_heads + h) * 2];
          const float l_stat = t.stats[(std::size_t(row) * c.n_heads + h) * 2 + 1];
          if (m_stat != 0.0f || l_stat != float(n))
            RC_FAIL("layer " + std::to_string(l) + " row " + std::to_string(row) + " head " + std::to_string(h) +
                    ": softmax stats (" + std::to_string(m_stat) + ", " + std::to_string(l_stat) + "), expected (0, " +
                    std::to_string(n) + ")");
          for (int d = 0; d < c.head_dim; ++d) {
            double sum = 0, sum_abs = 0;
            for (int j = first; j <= row; ++j) {
              const double v = t.v[(std::size_t(j) * c.n_kv_heads + kvh) * c.head_dim + d];
              sum += v, sum_abs += std::fabs(v);
            }
            const double mean = sum / n;
            // acc: an FP32 sum of n values per split plus one rounding per fold
            // (gamma_{n + splits} of sum|v|); then one rounding dividing by n.
            const double sum_error = sum_gamma(n + num::split_count(n)) * sum_abs;
            const double bound = sum_error / n + kUnitRoundoff * (std::fabs(mean) + sum_error / n);
            const double got = t.attn_out[(std::size_t(row) * c.n_heads + h) * c.head_dim + d];
            const double diff = std::fabs(got - mean);
            if (bound > 0) worst = std::max(worst, diff / bound);
            if (diff > bound)
              RC_FAIL("layer " + std::to_string(l) + " row " + std::to_string(row) + " head " + std::to_string(h) +
                      " dim " + std::to_string(d) + ": attention " + std::to_string(got) + " vs mean " +
                      std::to_string(mean) + ", bound " + std::to_string(bound));
          }
        }
    }
  });
  std::printf("[property] worst |attention - mean| / bound: %.3g\n", worst);
}

std::string report_failures(const FidelityReport& report) {
  std::ostringstream o;
  for (const GrossFinding& f : report.findings)
    if (f.fails) o << f.subject << " " << f.tap << ": " << to_string(f.kind) << " " << f.detail << "; ";
  for (const ReportRow& r : report.rows)
    if (!r.pass) o << r.tap << " " << r.metric << " " << r.value << " > bound " << r.bound << " (baseline " << r.baseline << "); ";
  return o.str();
}

TEST(PropertyErrorBounds, EnginePassesGateAgainstMpfrGolden) {
  KVFID_REQUIRE_BACKEND();
  check_property(6, [] {
    const std::string shape = *rc::gen::elementOf(synthetic_shape_names());
    const std::uint32_t seed = *rc::gen::arbitrary<std::uint32_t>();
    // Every weight format: the baseline (emulated_forward) stores norm weights and biases
    // in FP32 as the engine does (weight_storage.h). Before it did, this property found
    // the two running different models (tiny-mqa, seed 0, tokens [0, 0, 0, 0], bf16
    // weights: layers.0.k max_abs 0.0289 > bound 0.0196).
    const FloatFormat weights = *rc::gen::element(FloatFormat::f32, FloatFormat::f16, FloatFormat::bf16);
    const FloatFormat kv = *rc::gen::element(FloatFormat::f32, FloatFormat::f16, FloatFormat::bf16);
    const LatentPath path = *rc::gen::element(LatentPath::reconstruct, LatentPath::absorb);  // tiny-mla's
    const Model m = make_synthetic_model(synthetic_shape(shape), seed);
    const auto tokens = *gen_tokens(*rc::gen::inRange(4, 13), m.config.vocab);
    EngineOptions options;
    options.backend = backend_under_test();
    options.weights = weight_format(weights);
    options.kv = kv_spec(kv);
    options.latent = path;
    GoldenOptions golden_options;
    golden_options.threads = 1;  // ctest runs two tests at once on two cores
    const TapSet golden = compute_golden(m, tokens, golden_options).taps;
    const TapSet candidate = engine_forward(m, tokens, options);
    const TapSet baseline = emulated_forward(m, tokens, {FloatFormat::f32, options.weights, options.kv}, TapSelection::all);
    const FidelityReport report = build_fidelity_report(golden, candidate, baseline, {kv, FloatFormat::f32});
    if (!report.pass()) RC_FAIL(report_failures(report));
  });
}

}  // namespace
}  // namespace kvfid::test
