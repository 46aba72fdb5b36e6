// The independent float64 forward (forward_f64.h) against every committed golden that
// holds all taps: two implementations of the same model, one exact (MPFR, certified
// and rounded once to float64) and one in plain binary64, must agree within a bound
// derived from float64 rounding alone. A disagreement means one of them is wrong.
//
// The bound, per element of every tap (f64_error_bound.h derives each step):
//   |f64 - golden| <= B + h(golden)
//   B     the a-priori forward error bound of the float64 pass, propagated operation by
//         operation from |fl(a op b) - a op b| <= u |a op b|, u = 2^-53 (no FMA),
//         gamma_n = n u / (1 - n u) for length-n dot products in any order, 4 ulps for
//         glibc exp/pow/sin/cos, plus the error of the residual stream it starts from;
//   h(g)  half the float64 spacing above |g|: the golden's own rounding (it is the
//         exact value correctly rounded to float64).
// Errors compound by 1e3 to 1e4 per layer in a worst-case bound, so the float64 pass is
// restarted at every layer L from the golden's residual stream: layer 0 from the
// embedding rows (exact: weights embed in float64 exactly, error 0; Gemma's embed_scale
// product rounds them once, error u/(1-u) |x|), layer L > 0 from the golden's layers.(L-1).out, whose error is at most h per element; only layer L's
// taps (q, k, v, attn.probs, attn.out, out) are compared. The logits are compared after
// a restart at L = n_layers from the last layer's out.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "reference/f64/f64_error_bound.h"
#include "reference/f64/forward_trace.h"
#include "reference/golden/golden_io.h"
#include "reference/io/load_model.h"
#include "tests/common/generated_fixtures.h"
#include "tests/common/test_env.h"
#include "tests/reference/f64/f64_from_layer.h"

namespace kvfid::ref {
namespace {

using test::F64TapsWithBounds;
using test::f64_allowance_against_golden;
using test::forward_f64_from;

namespace fs = std::filesystem;

// Golden folders (relative to golden/) whose manifest says "taps": "all", sorted.
std::vector<std::string> all_tap_goldens() {
  std::vector<std::string> out;
  if (!fs::is_directory(test::golden_dir())) return out;
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(test::golden_dir())) {
    const fs::path manifest_path = entry.path() / kGoldenManifestFile;
    if (!entry.is_directory() || !fs::exists(manifest_path)) continue;
    std::ifstream in(manifest_path);
    const nlohmann::json manifest = nlohmann::json::parse(in);
    if (manifest.value("taps", "") == "all")
      out.push_back(fs::relative(entry.path(), test::golden_dir()).generic_string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// "layers.3.attn.probs" -> "attn.probs"; "logits" -> "logits".
std::string tap_kind(const std::string& name) {
  if (name.rfind("layers.", 0) != 0) return name;
  return name.substr(name.find('.', 7) + 1);
}

// Half the float64 spacing above |g|: bounds |g - exact| for a correctly rounded g.
double golden_rounding(double g) { return f64_allowance_against_golden(0.0, g); }

RowMatrix<double> as_matrix(const TapTensor& t, int rows, int cols) {
  EXPECT_EQ(t.numel(), std::int64_t(rows) * cols) << t.name;
  return Eigen::Map<const RowMatrix<double>>(t.values.data(), rows, cols);
}

// The residual stream entering `layer` as the golden has it, and its error bound.
struct Restart {
  RowMatrix<double> residual;  // [T, dim]
  RowMatrix<double> error;     // [T, dim], or empty for exact
};

Restart restart_at(const Model& model, const Golden& golden, int layer) {
  const int T = int(golden.tokens.size()), dim = model.config.dim;
  Restart r;
  if (layer == 0) {
    // The embedding rows are exact; Gemma's embed_scale product rounds them once.
    r.residual = embed_tokens<double>(model, golden.tokens);
    r.error = embedding_error_bound(model.config, r.residual);
    return r;
  }
  const TapTensor* out = find_tap(golden.taps, tap_layer_name(layer - 1, "out"));
  if (!out) throw std::runtime_error("golden has no " + tap_layer_name(layer - 1, "out"));
  r.residual = as_matrix(*out, T, dim);
  r.error = r.residual.unaryExpr([](double g) { return golden_rounding(g); });
  return r;
}

// Checks one float64 tap against the golden within its bound; returns the largest
// |f64 - golden| / (bound + golden rounding).
double check_tap(const TapTensor& value, const TapTensor& bound, const TapTensor& golden) {
  SCOPED_TRACE(value.name);
  EXPECT_EQ(value.shape, golden.shape);
  EXPECT_EQ(bound.shape, golden.shape);
  if (value.values.size() != golden.values.size() || bound.values.size() != golden.values.size()) return 0;
  // Gross failures first: non-finite values or bounds, an all-zero golden.
  double golden_max = 0;
  for (std::size_t j = 0; j < golden.values.size(); ++j) {
    const bool finite = std::isfinite(value.values[j]) && std::isfinite(bound.values[j]) && std::isfinite(golden.values[j]);
    if (!finite) {
      ADD_FAILURE() << "non-finite at element " << j << ": f64 " << value.values[j] << " bound " << bound.values[j]
                    << " golden " << golden.values[j];
      return 0;
    }
    golden_max = std::max(golden_max, std::fabs(golden.values[j]));
  }
  EXPECT_GT(golden_max, 0) << "golden tap is all zero";
  double worst = 0;
  int reported = 0;
  for (std::size_t j = 0; j < golden.values.size(); ++j) {
    const double err = std::fabs(value.values[j] - golden.values[j]);
    const double allowance = f64_allowance_against_golden(bound.values[j], golden.values[j]);
    if (err > allowance && reported++ < 5)
      ADD_FAILURE() << "element " << j << ": f64 " << value.values[j] << " golden " << golden.values[j] << " |diff| "
                    << err << " > bound " << bound.values[j] << " + golden half-ulp";
    worst = std::max(worst, err / allowance);
  }
  return worst;
}

class F64VsGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(F64VsGolden, EveryTapWithinTheFloat64Bound) {
  const fs::path dir = fs::path(test::golden_dir()) / GetParam();
  const Golden golden = read_golden(dir.string());
  const std::string model_rel = golden.manifest.at("model").get<std::string>();
  const fs::path model_path = test::ensure_model(model_rel);
  if (!fs::exists(model_path)) {
    // Only the shared real model may be absent (a fresh clone has no ../shared).
    ASSERT_EQ(model_rel.rfind("../shared/", 0), 0u) << model_path << " missing";
    GTEST_SKIP() << test::kStoriesMissing;
  }
  const Model model = load_model(model_path.string());
  ASSERT_EQ(model.sha256, golden.manifest.at("model_sha256").get<std::string>()) << "golden made from another model";
  const int T = int(golden.tokens.size()), n_layers = model.config.n_layers;
  // The golden must hold every tap the model has, or layers would go unchecked.
  for (const TapSpec& s : tap_specs(model.config, T, TapSelection::all))
    ASSERT_NE(find_tap(golden.taps, s.name), nullptr) << "golden lacks " << s.name;

  std::map<std::string, double> worst_by_kind;
  for (int layer = 0; layer <= n_layers; ++layer) {
    SCOPED_TRACE("restart at layer " + std::to_string(layer));
    const Restart start = restart_at(model, golden, layer);
    const F64TapsWithBounds run = forward_f64_from(model, layer, start.residual, start.error, TapSelection::all);
    ASSERT_EQ(run.values.size(), run.bounds.size());
    const std::string prefix = layer < n_layers ? tap_layer_name(layer, "") : "logits";
    int compared = 0;
    for (std::size_t i = 0; i < run.values.size(); ++i) {
      const std::string& name = run.values[i].name;
      if (name.rfind(prefix, 0) != 0) continue;
      ASSERT_EQ(run.bounds[i].name, name);
      const double worst = check_tap(run.values[i], run.bounds[i], *find_tap(golden.taps, name));
      double& kind_worst = worst_by_kind[tap_kind(name)];
      kind_worst = std::max(kind_worst, worst);
      ++compared;
    }
    EXPECT_EQ(compared, layer < n_layers ? 6 : 1) << "taps compared after restarting at layer " << layer;
  }
  for (const auto& [kind, worst] : worst_by_kind) {
    std::cout << GetParam() << ": worst |f64 - golden| / (bound + golden half-ulp) for " << kind << " = " << worst
              << "\n";
    RecordProperty("worst_ratio_" + kind, std::to_string(worst));
  }
}

INSTANTIATE_TEST_SUITE_P(Committed, F64VsGolden, ::testing::ValuesIn(all_tap_goldens()),
                         [](const auto& info) { return test::param_name(info.param); });

// The list above comes from the committed golden/ tree; an empty list would make the
// parameterized test vanish silently.
TEST(F64VsGoldenList, FindsTheFixtureGoldens) {
  const std::vector<std::string> found = all_tap_goldens();
  for (const char* expected : {"tiny-llama/short", "tiny-mqa/short", "tiny-qwen2/short", "tiny-llama3/short", "tiny-qwen3/short",
                               "tiny-mistral/short", "tiny-gemma2/short", "tiny-mla/short"})
    EXPECT_NE(std::find(found.begin(), found.end(), expected), found.end()) << expected;
}

}  // namespace
}  // namespace kvfid::ref
