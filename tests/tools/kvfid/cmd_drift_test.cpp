// kvfid drift end to end on the tiny-llama fixture: the CSV against an independent
// recomputation (golden and engine computed here, separately, with the library
// calls a user would make), the invariance verdict in stdout and JSON, the SVG's
// structure, and bad input exiting 2 with one line and nothing written.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cuda/engine/engine_forward.h"
#include "reference/io/load_model.h"
#include "reference/io/prompt.h"
#include "reference/metrics/logit_metrics.h"
#include "reference/native/emulated_forward.h"
#include "reference/mp/golden_forward.h"
#include "tests/common/model_files.h"
#include "tests/common/run_cli.h"
#include "tests/common/test_env.h"
#include "tests/common/typed_options.h"
#include "tests/reference/util/xml_elements.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the layers below: the specification,
using namespace kvfid::engine;  // and the engine
namespace {

namespace fs = std::filesystem;

constexpr int kPositions = 12;  // the 8-token short prompt plus 4 greedy tokens
const std::vector<std::string> kKv = {"f16", "bf16"};
constexpr const char* kWeights = "bf16";
// Series: per KV spec cached decode, recompute and by-length cached decode (6), the
// shared budget runs (floor, weights, arithmetic) and per KV spec its kv and all runs (4).
constexpr int kSeries = 13;

// Attention entropies are sums of a few dozen double terms, computed here in a
// different order than the library's: 1e-12 relative is thousands of double ulps of
// room for that, and far below any entropy difference a format causes (f16 keys move
// entropies by ~1e-4 relative).
constexpr double kEntropyAgreement = 1e-12;

struct DriftOutput {
  test::CliResult cli;
  std::string dir;
  std::string model;
};

const DriftOutput& drift_output() {
  static const DriftOutput out = [] {
    DriftOutput o;
    o.dir = test::scratch_dir("cmd_drift") + "/out";
    o.model = test::fixtures_dir() + "/tiny-llama";
    o.cli = test::run_kvfid({"drift", "--model", o.model, "--prompt", test::fixtures_dir() + "/prompts/short.tokens",
                             "--kv", "f16,bf16", "--weights", kWeights, "--positions", std::to_string(kPositions),
                             "--out", o.dir});
    return o;
  }();
  return out;
}

std::vector<std::string> csv_fields(const std::string& line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') fields.back() += '"', ++i;
      else if (c == '"') quoted = false;
      else fields.back() += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  return fields;
}

// Rows keyed by (configuration, position), each a map from column to text.
using CsvRow = std::map<std::string, std::string>;
std::map<std::pair<std::string, int>, CsvRow> read_csv(const std::string& path) {
  const std::vector<std::string> lines = test::split_lines(test::read_bytes(path));
  const std::vector<std::string> header = csv_fields(lines.at(0));
  std::map<std::pair<std::string, int>, CsvRow> rows;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const std::vector<std::string> f = csv_fields(lines[i]);
    EXPECT_EQ(f.size(), header.size()) << lines[i];
    CsvRow row;
    for (std::size_t c = 0; c < header.size() && c < f.size(); ++c) row[header[c]] = f[c];
    rows[{row["configuration"], std::stoi(row["position"])}] = row;
  }
  return rows;
}

TEST(CmdDrift, RunsAndReportsExactInvariance) {
  const DriftOutput& o = drift_output();
  ASSERT_EQ(o.cli.exit_code, 0) << o.cli.out << o.cli.err;
  for (const char* f : {"drift.csv", "drift.json", "drift.svg"}) EXPECT_TRUE(fs::exists(o.dir + "/" + f)) << f;
  EXPECT_NE(o.cli.out.find("invariance: cached decode and recompute logits are bitwise equal at all 12 positions"),
            std::string::npos)
      << o.cli.out;
  // 12 positions: no context passes 32 keys, so the by-length split cuts none of them
  // differently either.
  EXPECT_NE(o.cli.out.find("by-length split (cached decode against recompute; differences expected, not a failure): "
                           "KV f16: bitwise equal at all 12 positions; KV bf16: bitwise equal at all 12 positions"),
            std::string::npos)
      << o.cli.out;
  const nlohmann::json j = nlohmann::json::parse(test::read_bytes(o.dir + "/drift.json"));
  EXPECT_EQ(j.at("summary").at("cached_recompute_bitwise_equal"), true);
  EXPECT_NE(j.at("summary").at("by_length_split").get<std::string>().find("KV bf16: bitwise equal"), std::string::npos);
  ASSERT_EQ(j.at("invariance").size(), 2 * kKv.size());
  for (std::size_t i = 0; i < j.at("invariance").size(); ++i) {
    const auto& v = j.at("invariance").at(i);
    EXPECT_EQ(v.at("split"), i < kKv.size() ? "invariant" : "by-length");
    EXPECT_EQ(v.at("kv"), kKv[i % kKv.size()]);
    EXPECT_EQ(v.at("bitwise_equal"), true);
    EXPECT_EQ(v.at("differing_positions"), 0);
    EXPECT_EQ(v.at("max_abs_logit_difference"), 0.0);
  }
  EXPECT_EQ(j.at("positions"), kPositions);
  EXPECT_EQ(j.at("prompt_tokens"), 8);
  EXPECT_EQ(j.at("series").size(), std::size_t(kSeries));
  EXPECT_EQ(j.at("error_budget").size(), kKv.size());
  // The summary's last-position KL is the series' last value.
  for (const auto& s : j.at("series"))
    EXPECT_EQ(j.at("summary").at("kl_last").at(s.at("name").get<std::string>()), s.at("kl").back()) << s.at("name");
  EXPECT_GT(j.at("summary").at("timings_seconds").at("golden").get<double>(), 0.0);
}

// Positions 0, middle and last of two engine configurations, recomputed from a golden
// made here (logits only: the drift run took them from an all-taps golden) and a fresh
// one-shot engine prefill of tokens[0..t].
TEST(CmdDrift, CsvMatchesAnIndependentRecomputation) {
  const DriftOutput& o = drift_output();
  ASSERT_EQ(o.cli.exit_code, 0) << o.cli.out << o.cli.err;
  const auto rows = read_csv(o.dir + "/drift.csv");
  ASSERT_EQ(rows.size(), std::size_t(kSeries * kPositions));
  const nlohmann::json j = nlohmann::json::parse(test::read_bytes(o.dir + "/drift.json"));
  const std::vector<int> tokens = j.at("tokens").get<std::vector<int>>();
  ASSERT_EQ(tokens.size(), std::size_t(kPositions));

  const Model model = load_model(o.model);
  const int vocab = model.config.vocab;
  GoldenOptions go;
  go.taps = TapSelection::all;
  const GoldenResult golden = compute_golden(model, tokens, go);
  const TapTensor& g = *find_tap(golden.taps, "logits");
  for (const std::string& kv : kKv)
    for (const char* schedule : {"cached-decode", "recompute", "cached-decode by-length"})
      for (int t : {0, kPositions / 2, kPositions - 1}) {
        SCOPED_TRACE(kv + " " + schedule + " t=" + std::to_string(t));
        EngineOptions options;
        options.weights = test::weight_format(kWeights);
        options.kv = test::kv_spec(kv);
        options.taps = TapSelection::all;
        if (std::string(schedule) == "cached-decode by-length") {  // token by token, as that run decodes
          options.split = SplitMode::by_length;
          options.chunk = 1;
        }
        const TapSet e = engine_forward(model, std::vector<int>(tokens.begin(), tokens.begin() + t + 1), options);
        const double* x = find_tap(e, "logits")->values.data() + std::size_t(t) * vocab;  // [vocab]
        const double* gr = g.values.data() + std::size_t(t) * vocab;                      // [vocab]
        double max_err = 0;
        for (int i = 0; i < vocab; ++i) max_err = std::max(max_err, std::fabs(x[i] - gr[i]));
        const CsvRow& row = rows.at({kv + " " + schedule, t});
        EXPECT_EQ(row.at("split"), to_string(options.split));
        EXPECT_EQ(std::stoi(row.at("token")), tokens[t]);
        EXPECT_EQ(std::stod(row.at("kl")), kl_divergence_of_logits(gr, x, std::size_t(vocab)));
        EXPECT_EQ(std::stod(row.at("max_abs_logit_error")), max_err);
        EXPECT_EQ(std::stoi(row.at("golden_top1")), int(std::max_element(gr, gr + vocab) - gr));
        EXPECT_EQ(std::stoi(row.at("top1")), int(std::max_element(x, x + vocab) - x));
        EXPECT_EQ(std::stod(row.at("uniform_weight")), 1.0 / (t + 1));

        // Layer 1's attention: the golden's from its probs tap, the engine's from its q
        // and cached-k taps, both by the definition -sum p ln p, averaged over heads.
        const ModelConfig& c = model.config;
        const TapTensor& probs = *find_tap(golden.taps, tap_layer_name(1, "attn.probs"));  // [heads, T, T]
        const TapTensor& q = *find_tap(e, tap_layer_name(1, "q"));                         // [t+1, heads, hd]
        const TapTensor& k = *find_tap(e, tap_layer_name(1, "k"));                         // [t+1, kv_heads, hd]
        double golden_entropy = 0, engine_entropy = 0, golden_newest = 0;
        for (int h = 0; h < c.n_heads; ++h) {
          std::vector<double> s(std::size_t(t) + 1);
          for (int j2 = 0; j2 <= t; ++j2) {
            const double p = probs.values[(std::size_t(h) * kPositions + t) * kPositions + j2];
            if (p > 0) golden_entropy -= p * std::log(p);
            double dot = 0;
            for (int d = 0; d < c.head_dim; ++d)
              dot += q.values[(std::size_t(t) * c.n_heads + h) * c.head_dim + d] *
                     k.values[(std::size_t(j2) * c.n_kv_heads + c.kv_head_of(h)) * c.head_dim + d];
            s[j2] = dot / std::sqrt(double(c.head_dim));
          }
          golden_newest += probs.values[(std::size_t(h) * kPositions + t) * kPositions + t];
          // -sum p ln p = ln Z - sum p s  with p = exp(s - m) / Z, Z = sum exp(s - m)
          const double m = *std::max_element(s.begin(), s.end());
          double z = 0, ps = 0;
          for (double v : s) z += std::exp(v - m);
          for (double v : s) ps += std::exp(v - m) / z * (v - m);
          engine_entropy += std::log(z) - ps;
        }
        golden_entropy /= c.n_heads, engine_entropy /= c.n_heads, golden_newest /= c.n_heads;
        EXPECT_NEAR(std::stod(row.at("golden_entropy_1")), golden_entropy, kEntropyAgreement * std::max(1.0, golden_entropy));
        EXPECT_NEAR(std::stod(row.at("entropy_1")), engine_entropy, kEntropyAgreement * std::max(1.0, engine_entropy));
        EXPECT_NEAR(std::stod(row.at("golden_newest_weight_1")), golden_newest, kEntropyAgreement);
      }
}

// The budget's kv-only run at the last position, against the emulation run here.
TEST(CmdDrift, BudgetRowsMatchTheEmulation) {
  const DriftOutput& o = drift_output();
  ASSERT_EQ(o.cli.exit_code, 0) << o.cli.out << o.cli.err;
  const auto rows = read_csv(o.dir + "/drift.csv");
  const nlohmann::json j = nlohmann::json::parse(test::read_bytes(o.dir + "/drift.json"));
  const std::vector<int> tokens = j.at("tokens").get<std::vector<int>>();
  const Model model = load_model(o.model);
  GoldenOptions go;
  go.taps = TapSelection::logits;
  const TapTensor golden = *find_tap(compute_golden(model, tokens, go).taps, "logits");
  const TapSet kv_only = emulated_forward(model, tokens, Emulation{FloatFormat::f32, test::weight_format("f32"), test::kv_spec("f16"), {}}, TapSelection::logits);
  const int t = kPositions - 1, vocab = model.config.vocab;
  const double kl = kl_divergence_of_logits(golden.values.data() + std::size_t(t) * vocab,
                                            find_tap(kv_only, "logits")->values.data() + std::size_t(t) * vocab, std::size_t(vocab));
  const CsvRow& row = rows.at({"budget: kv f16", t});
  EXPECT_EQ(row.at("kind"), "attribution");
  EXPECT_EQ(row.at("split"), "");  // the emulation has no attention splits
  EXPECT_EQ(row.at("entropy_0"), "");  // logits-only runs have no attention
  EXPECT_EQ(std::stod(row.at("kl")), kl);
  const auto& budget = j.at("error_budget").at(0);
  EXPECT_EQ(budget.at("kv"), "f16");
  EXPECT_EQ(budget.at("position"), t);
  EXPECT_EQ(budget.at("sources").at(1).at("kl").get<double>(), kl);
  double share_sum = 0;
  for (const auto& s : budget.at("sources")) share_sum += s.at("kl_share").get<double>();
  EXPECT_NEAR(share_sum, 1.0, 4 * std::numeric_limits<double>::epsilon());  // three rounded quotients
}

TEST(CmdDrift, SvgHasOneLinePerConfigurationAndNamesModelAndFormats) {
  const DriftOutput& o = drift_output();
  ASSERT_EQ(o.cli.exit_code, 0) << o.cli.out << o.cli.err;
  const test::XmlDocument doc = test::parse_xml(test::read_bytes(o.dir + "/drift.svg"));
  ASSERT_EQ(doc.error, "");
  const auto lines = doc.named("polyline");
  ASSERT_EQ(lines.size(), std::size_t(kSeries));
  EXPECT_EQ(lines[0]->attributes.at("data-label"), "f16 cached-decode");
  EXPECT_EQ(lines[0]->attributes.count("stroke-dasharray"), 0u);
  EXPECT_EQ(lines[1]->attributes.at("stroke-dasharray"), "6 4");
  // The by-length curve: its own line style, and a legend entry naming it.
  EXPECT_EQ(lines[2]->attributes.at("data-label"), "f16 cached-decode by-length");
  EXPECT_EQ(lines[2]->attributes.at("stroke-dasharray"), "9 3 2 3");
  const auto texts = doc.named("text");
  EXPECT_TRUE(std::any_of(texts.begin(), texts.end(), [](const auto* e) { return e->text == "f16 cached-decode by-length"; }));
  const std::string title = doc.with_class("title").at(0)->text;
  EXPECT_NE(title.find("tiny-llama"), std::string::npos) << title;
  EXPECT_NE(title.find("f16, bf16"), std::string::npos) << title;
  EXPECT_NE(title.find("weights bf16"), std::string::npos) << title;
  EXPECT_NE(doc.with_class("x-label").at(0)->text.find("position"), std::string::npos);
  EXPECT_NE(doc.with_class("y-label").at(0)->text.find("KL"), std::string::npos);
  for (const auto* tick : doc.with_class("y-tick")) EXPECT_EQ(tick->text.rfind("1e", 0), 0u) << tick->text;
}

// Each bad input: exit 2, one stderr line naming the flag or file, no output folder.
TEST(CmdDrift, BadInputExitsTwoNamingTheProblem) {
  const std::string dir = test::scratch_dir("cmd_drift_bad");
  const std::string model = test::fixtures_dir() + "/tiny-llama", prompt = test::fixtures_dir() + "/prompts/short.tokens";
  const std::string out = dir + "/out";
  struct Case {
    std::vector<std::string> args;
    std::string named;
  };
  const std::vector<Case> cases = {
      {{"--model", model, "--prompt", dir + "/missing.tokens", "--out", out}, "missing.tokens"},
      {{"--model", dir + "/no-model", "--prompt", prompt, "--out", out}, "no-model"},
      {{"--model", model, "--prompt", prompt, "--kv", "f16,q4", "--out", out}, "--kv"},
      {{"--model", model, "--prompt", prompt, "--kv", "f16,,bf16", "--out", out}, "--kv"},
      {{"--model", model, "--prompt", prompt, "--kv", "f16,f16", "--out", out}, "--kv"},
      {{"--model", model, "--prompt", prompt, "--weights", "q4", "--out", out}, "--weights"},
      {{"--model", model, "--prompt", prompt, "--positions", "0", "--out", out}, "--positions"},
      {{"--model", model, "--prompt", prompt, "--positions", "257", "--out", out}, "--positions"},  // context 256
      {{"--model", model, "--prompt", prompt, "--positions", "x", "--out", out}, "--positions"},
      {{"--model", model, "--prompt", prompt, "--recompute-every", "0", "--out", out}, "--recompute-every"},
      {{"--model", model, "--prompt", prompt, "--recompute-every", "-3", "--out", out}, "--recompute-every"},
      {{"--model", model, "--prompt", prompt, "--engine", "gpu", "--out", out}, "--engine"},
      {{"--model", model, "--prompt", prompt, "--out", dir + "/missing/deeper/out"}, "missing"},
      {{"--model", model, "--out", out}, "--prompt"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"drift"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const test::CliResult r = test::run_kvfid(args);
    SCOPED_TRACE(r.err);
    EXPECT_EQ(r.exit_code, 2);
    const auto lines = test::split_lines(r.err);
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_NE(lines[0].find(c.named), std::string::npos);
    EXPECT_FALSE(fs::exists(out));
  }
}

// --recompute-every 5 over 12 positions: fresh prefills at positions 4, 9 and the last,
// 11, only; the cached decode still covers all 12 and is compared at those three.
TEST(CmdDrift, StridedRecomputeRunsAndComparesOnlyItsPositions) {
  const std::string out = test::scratch_dir("cmd_drift_strided") + "/out";
  const test::CliResult r =
      test::run_kvfid({"drift", "--model", test::fixtures_dir() + "/tiny-llama", "--prompt",
                       test::fixtures_dir() + "/prompts/short.tokens", "--kv", "f16", "--positions",
                       std::to_string(kPositions), "--recompute-every", "5", "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("bitwise equal at all 3 recomputed positions (every 5th and the last) of 12 (KV f16)"),
            std::string::npos)
      << r.out;
  const nlohmann::json j = nlohmann::json::parse(test::read_bytes(out + "/drift.json"));
  EXPECT_EQ(j.at("recompute_every"), 5);
  ASSERT_EQ(j.at("invariance").size(), 2u);  // invariant and by-length cached decode
  for (const auto& v : j.at("invariance")) EXPECT_EQ(v.at("compared_positions"), 3);
  for (const auto& s : j.at("series")) {
    const std::vector<int> at = s.at("positions").get<std::vector<int>>();
    if (s.at("schedule") == "recompute") EXPECT_EQ(at, (std::vector<int>{4, 9, 11})) << s.at("name");
    else EXPECT_EQ(at.size(), std::size_t(kPositions)) << s.at("name");
    EXPECT_EQ(s.at("kl").size(), at.size());
  }
  // The recompute's CSV rows are its three positions, with the cached decode's KL there
  // (invariant mode: the same logits).
  const auto rows = read_csv(out + "/drift.csv");
  int recompute_rows = 0;
  for (const auto& [key, row] : rows)
    if (row.at("schedule") == "recompute") {
      ++recompute_rows;
      EXPECT_EQ(row.at("kl"), rows.at({"f16 cached-decode", key.second}).at("kl")) << key.second;
    }
  EXPECT_EQ(recompute_rows, 3);
}

// A KV spec with an eviction: its three engine runs stay bitwise invariant (the
// recompute's fresh prefills have the cached decode's capacity, which a percentage
// budget is of), and its exact account joins the series: per position the dropped mass,
// |o - o'| within its bound, in the JSON, the CSV and eviction.svg.
TEST(CmdDrift, AnEvictionAddsItsExactAccountAndStaysInvariant) {
  const std::string out = test::scratch_dir("cmd_drift_evict") + "/out";
  const test::CliResult r =
      test::run_kvfid({"drift", "--model", test::fixtures_dir() + "/tiny-llama", "--prompt",
                       test::fixtures_dir() + "/prompts/short.tokens", "--kv", "f16+evict=h2o:25%", "--positions",
                       std::to_string(kPositions), "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("bitwise equal at all 12 positions (KV f16+evict=h2o:25%)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("eviction account, KV f16+evict=h2o:25%"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("held at every step"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(out + "/eviction.svg"));
  const nlohmann::json j = nlohmann::json::parse(test::read_bytes(out + "/drift.json"));
  int accounts = 0;
  for (const auto& s : j.at("series")) {
    if (s.at("kind") != "account") continue;
    ++accounts;
    EXPECT_TRUE(s.at("bound_held").get<bool>());
    const auto mass = s.at("evicted_mass").get<std::vector<double>>();
    const auto error = s.at("evict_error").get<std::vector<double>>();
    const auto bound = s.at("evict_bound").get<std::vector<double>>();
    ASSERT_EQ(mass.size(), std::size_t(kPositions));
    // 25% of 12: 3 past keys; nothing is dropped before position 4, something after.
    for (int t = 0; t < 4; ++t) EXPECT_EQ(mass[std::size_t(t)], 0.0) << t;
    EXPECT_GT(*std::max_element(mass.begin(), mass.end()), 0.0);
    for (std::size_t t = 0; t < mass.size(); ++t) EXPECT_LE(error[t], bound[t]) << t;
  }
  EXPECT_EQ(accounts, 1);
  const auto rows = read_csv(out + "/drift.csv");
  for (const auto& [key, row] : rows)
    EXPECT_EQ(row.at("evicted_mass").empty(), row.at("kind") != "account") << key.first << " " << key.second;
}

// A latent-attention model by its absorbed decode path: cached decode and recompute
// still agree bit for bit, the path is recorded, and an unknown path is refused in one
// line naming the flag.
TEST(CmdDrift, ALatentModelDriftsByTheDecodePathAsked) {
  const std::string out = test::scratch_dir("cmd_drift_mla") + "/out";
  const std::vector<std::string> args = {"drift", "--model", test::fixtures_dir() + "/tiny-mla", "--prompt",
                                         test::fixtures_dir() + "/prompts/short.tokens", "--kv", "f16", "--positions",
                                         std::to_string(kPositions), "--out", out};
  std::vector<std::string> absorb = args, bad = args;
  absorb.insert(absorb.end(), {"--mla", "absorb"});
  const test::CliResult r = test::run_kvfid(absorb);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("bitwise equal at all 12 positions (KV f16)"), std::string::npos) << r.out;
  EXPECT_EQ(nlohmann::json::parse(test::read_bytes(out + "/drift.json")).at("mla"), "absorb");
  bad.back() = out + "-bad";
  bad.insert(bad.end(), {"--mla", "absorbed"});
  const test::CliResult b = test::run_kvfid(bad);
  EXPECT_EQ(b.exit_code, 2);
  EXPECT_NE(b.err.find("--mla"), std::string::npos) << b.err;
  EXPECT_FALSE(fs::exists(out + "-bad"));
}

// Without a GPU (or a CUDA build) the CUDA engine is unavailable: exit 2 with its
// reason, before any long work; with one, the run must pass like the twin's.
TEST(CmdDrift, CudaEngineWithoutGpuExitsTwo) {
  const std::string out = test::scratch_dir("cmd_drift_cuda") + "/out";
  const test::CliResult r = test::run_kvfid({"drift", "--model", test::fixtures_dir() + "/tiny-llama", "--prompt",
                                             test::fixtures_dir() + "/prompts/short.tokens", "--engine", "cuda", "--out", out});
  if (r.exit_code == 0) GTEST_SKIP() << "a CUDA device ran it: the unavailable path is not reachable here";
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("CUDA"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace kvfid::cli
