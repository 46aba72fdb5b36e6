// kvfid quant end to end on the tiny-llama fixture: the per-position KL divergences of
// its JSON against an independent recomputation (the golden and the engine run here
// with the library calls a user would make), --kv-scales amax applying the calibrated
// scales, and bad input exiting 2 with one line and nothing written.
#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cuda/engine/engine_forward.h"
#include "reference/calibration/kv_calibration.h"
#include "reference/calibration/kv_policy_fit.h"
#include "reference/io/load_model.h"
#include "reference/io/prompt.h"
#include "reference/metrics/logit_metrics.h"
#include "reference/mp/golden_forward.h"
#include "tests/common/model_files.h"
#include "tests/common/run_cli.h"
#include "tests/common/test_env.h"
#include "tests/common/typed_options.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the layers below: the specification,
using namespace kvfid::engine;  // and the engine
namespace {

namespace fs = std::filesystem;

// Both sides evaluate KL(p || q) in double from the same two logit rows, in different
// orders (the report's log-sum-exp against logit_metrics'): a few ulps per term over
// the fixture's vocabulary of 128, so 1e-12 relative plus 1e-15 absolute (KLs near 0)
// is thousands of ulps of room and far below any format's effect (f16 KV gives ~1e-6).
constexpr double kKlRelative = 1e-12;
constexpr double kKlAbsolute = 1e-15;

std::string model_dir() { return test::fixtures_dir() + "/tiny-llama"; }
std::string prompt() { return test::fixtures_dir() + "/prompts/short.tokens"; }

struct QuantRun {
  test::CliResult cli;
  nlohmann::json json;
};

QuantRun run_quant(const std::string& name, std::vector<std::string> extra) {
  const std::string json = test::scratch_dir("cmd_quant_" + name) + "/report.json";
  std::vector<std::string> args = {"quant", "--model", model_dir(), "--prompt", prompt(), "--weights", "f16",
                                   "--json", json};
  args.insert(args.end(), extra.begin(), extra.end());
  QuantRun r{test::run_kvfid(args), {}};
  if (r.cli.exit_code == 0) r.json = nlohmann::json::parse(test::read_bytes(json));
  return r;
}

// The column's per-position KLDs against golden and engine logits computed here.
void expect_klds_match(const nlohmann::json& column, const std::vector<float>& kv_scales) {
  const Model model = load_model(model_dir());
  const std::vector<int> tokens = read_prompt_file(prompt());
  const int vocab = model.config.vocab;
  const TapSet golden = compute_golden(model, tokens, {}).taps;
  EngineOptions options;
  options.weights = test::weight_format("f16");
  options.kv = test::kv_spec(column.at("label").get<std::string>());
  options.kv_scales = kv_scales;
  const TapSet engine = engine_forward(model, tokens, options);
  const std::vector<double>& g = find_tap(golden, "logits")->values;  // [T, vocab]
  const std::vector<double>& e = find_tap(engine, "logits")->values;  // [T, vocab]
  const auto& klds = column.at("logits").at("per_position").at("kld");
  ASSERT_EQ(klds.size(), tokens.size() - 1);  // position t predicts tokens[t + 1]
  for (std::size_t t = 0; t < klds.size(); ++t) {
    const double expected = kl_divergence_of_logits(g.data() + t * vocab, e.data() + t * vocab, std::size_t(vocab));
    EXPECT_NEAR(klds[t].get<double>(), expected, kKlRelative * expected + kKlAbsolute) << options.kv.text << " t=" << t;
  }
}

TEST(CmdQuant, KldsMatchAnIndependentRecomputation) {
  const QuantRun r = run_quant("plain", {"--kv", "f16,q8_0"});
  ASSERT_EQ(r.cli.exit_code, 0) << r.cli.out << r.cli.err;
  ASSERT_EQ(r.json.at("columns").size(), 2u);
  EXPECT_EQ(r.json.at("columns")[0].at("label"), "f16");
  EXPECT_EQ(r.json.at("columns")[1].at("label"), "q8_0");
  for (const auto& column : r.json.at("columns")) expect_klds_match(column, {});
  EXPECT_NE(r.cli.out.find("q8_0"), std::string::npos) << r.cli.out;
}

// amax scales are the golden's per-head K/V maxima over the format's largest value
// (kv_calibration.h); the run must be the engine under exactly those scales.
// An evicting policy's column: no K/V error rows (its evicted tokens are gone) but the
// exact account, whose bound held; the cache held fewer bits than f16's 16.
TEST(CmdQuant, AnEvictingPolicyReportsItsExactAccount) {
  const QuantRun r = run_quant("evict", {"--kv", "f16,f16+evict=h2o:3"});
  ASSERT_EQ(r.cli.exit_code, 0) << r.cli.out << r.cli.err;
  EXPECT_NE(r.cli.out.find("eviction: bound held"), std::string::npos) << r.cli.out;
  const nlohmann::json& plain = r.json.at("columns").at(0);
  const nlohmann::json& evicting = r.json.at("columns").at(1);
  EXPECT_TRUE(plain.at("eviction").is_null());
  EXPECT_FALSE(plain.at("kv").empty());
  EXPECT_TRUE(evicting.at("kv").empty());
  const nlohmann::json& e = evicting.at("eviction");
  EXPECT_TRUE(e.at("bound_held").get<bool>());
  EXPECT_LT(e.at("kept_fraction").get<double>(), 1.0);
  EXPECT_GT(e.at("mass_max").get<double>(), 0.0);
  EXPECT_LE(e.at("error_max").get<double>(), e.at("bound_max").get<double>());
  EXPECT_GT(e.at("kld_mean").get<double>(), 0.0);
  EXPECT_LT(evicting.at("kv_bits_per_element").get<double>(), 16.0);
}

TEST(CmdQuant, AmaxScalesAreTheCalibratedOnes) {
  const QuantRun r = run_quant("amax", {"--kv", "fp8_e4m3", "--kv-scales", "amax"});
  ASSERT_EQ(r.cli.exit_code, 0) << r.cli.out << r.cli.err;
  EXPECT_EQ(r.json.at("options").at("kv_scales"), "amax");
  EXPECT_NE(r.cli.out.find("FP8 scales: per head, the amax"), std::string::npos) << r.cli.out;
  const Model model = load_model(model_dir());
  GoldenOptions all;
  all.taps = TapSelection::all;
  const TapSet golden = compute_golden(model, read_prompt_file(prompt()), all).taps;
  const std::vector<float> scales = quant::amax_kv_scales(
      quant::resolve_kv_policy(quant::parse_kv_policy_spec("fp8_e4m3", "test"), {}, model.config), model.config, golden, "test");
  bool any_not_one = false;
  for (float s : scales) any_not_one = any_not_one || s != 1.0f;
  ASSERT_TRUE(any_not_one) << "the fixture's K/V must move the scales for this test to mean anything";
  expect_klds_match(r.json.at("columns")[0], scales);
}

TEST(CmdQuant, BadInputExitsTwoWithOneLineAndNoReport) {
  for (const auto& [flag, value] : std::vector<std::pair<std::string, std::string>>{
           {"--kv-scales", "max"}, {"--kv", "f16,nonsense"}, {"--kv", "f16,"}, {"--weights", "q5_1"}}) {
    const std::string json = test::scratch_dir("cmd_quant_bad") + "/report.json";
    std::vector<std::string> args = {"quant", "--model", model_dir(), "--prompt", prompt(), "--json", json};
    if (flag != "--kv") args.insert(args.end(), {"--kv", "f16"});
    args.insert(args.end(), {flag, value});
    const test::CliResult cli = test::run_kvfid(args);
    EXPECT_EQ(cli.exit_code, test::kExitBadInput) << flag << " " << value << ": " << cli.err;
    EXPECT_EQ(test::split_lines(cli.err).size(), 1u) << cli.err;
    EXPECT_NE(cli.err.find(flag), std::string::npos) << cli.err;
    EXPECT_FALSE(fs::exists(json));
  }
}

TEST(CmdQuant, OneTokenPromptIsBadInputNamingThePrompt) {
  // kvfid quant scores each token's prediction of the next; with one token it once
  // aborted on an uncaught std::invalid_argument.
  const std::string dir = test::scratch_dir("cmd_quant_one_token");
  const std::string one = dir + "/one.tokens";
  test::write_bytes(one, "7\n");
  const test::CliResult cli =
      test::run_kvfid({"quant", "--model", model_dir(), "--prompt", one, "--kv", "f16", "--json", dir + "/r.json"});
  EXPECT_EQ(cli.exit_code, test::kExitBadInput) << cli.err;
  ASSERT_EQ(test::split_lines(cli.err).size(), 1u) << cli.err;
  EXPECT_NE(cli.err.find(one + ": 1 token"), std::string::npos) << cli.err;
  EXPECT_FALSE(fs::exists(dir + "/r.json"));
}

// --baseline reuses a golden of the same model and prompt instead of computing one: the
// report's results are the same, and the model is loaded once and checked against the
// golden's sha256 (a golden of another model is refused, naming both).
TEST(CmdQuant, BaselineGoldenGivesTheSameResultsAndMustBeOfThisModel) {
  const std::string golden = test::golden_dir() + "/tiny-llama/short";
  const QuantRun fresh = run_quant("baseline_fresh", {"--kv", "f16,q8_0"});
  const QuantRun reused = run_quant("baseline_reused", {"--kv", "f16,q8_0", "--baseline", golden});
  ASSERT_EQ(fresh.cli.exit_code, 0) << fresh.cli.err;
  ASSERT_EQ(reused.cli.exit_code, 0) << reused.cli.err;
  EXPECT_EQ(reused.json.at("columns"), fresh.json.at("columns"));
  EXPECT_EQ(reused.json.at("weights"), fresh.json.at("weights"));

  const QuantRun other = run_quant("baseline_other", {"--kv", "f16", "--baseline", test::golden_dir() + "/tiny-qwen2/short"});
  EXPECT_EQ(other.cli.exit_code, test::kExitBadInput) << other.cli.err;
  ASSERT_EQ(test::split_lines(other.cli.err).size(), 1u) << other.cli.err;
  EXPECT_NE(other.cli.err.find("is not the golden's model"), std::string::npos) << other.cli.err;
}

}  // namespace
}  // namespace kvfid::cli
