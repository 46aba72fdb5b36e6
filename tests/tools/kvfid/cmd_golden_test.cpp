// kvfid golden through the built binary: a golden folder that reads back with the
// right taps and a complete manifest, the same bytes on every run, and bad input
// refused with exit 2, one stderr line naming the culprit, and nothing written.
#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "reference/golden/golden_io.h"
#include "reference/io/load_model.h"
#include "reference/io/prompt.h"
#include "tests/common/model_files.h"
#include "tests/common/run_cli.h"
#include "tests/common/test_env.h"
#include "tests/tools/kvfid/safetensors_bytes.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the specification's names: the layer below
namespace {

namespace fs = std::filesystem;

constexpr int kDefaultPrecisionBits = 128;  // kvfid golden's documented --bits default

std::string tiny_llama() { return test::fixtures_dir() + "/tiny-llama"; }
std::string short_prompt() { return test::fixtures_dir() + "/prompts/short.tokens"; }
std::string committed_short_golden() { return test::golden_dir() + "/tiny-llama/short"; }

std::set<std::string> entries(const std::string& dir) {
  std::set<std::string> names;
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

TEST(CmdGolden, WritesAGoldenThatReadsBackWithItsManifest) {
  const std::string out = test::scratch_dir("cmd_golden_ok") + "/g";
  const std::vector<int> tokens = {39, 113, 89, 42, 2};
  const auto r = test::run_kvfid({"golden", "--model", tiny_llama(), "--tokens", "39,113,89,42,2", "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(entries(out), (std::set<std::string>{kGoldenTensorsFile, kGoldenManifestFile}));

  const Golden g = read_golden(out);
  const Model model = load_model(tiny_llama());
  const std::vector<TapSpec> specs = tap_specs(model.config, int(tokens.size()), TapSelection::all);
  ASSERT_EQ(g.taps.size(), specs.size());
  std::int64_t numel = 0;
  for (const TapSpec& s : specs) {
    const TapTensor* t = find_tap(g.taps, s.name);
    ASSERT_NE(t, nullptr) << s.name;
    EXPECT_EQ(t->shape, s.shape) << s.name;
    numel += t->numel();
  }
  EXPECT_EQ(g.manifest.at("model"), tiny_llama());
  EXPECT_EQ(g.manifest.at("model_sha256"), model.sha256);
  EXPECT_EQ(g.manifest.at("model_sha256").get<std::string>().size(), 64u);
  EXPECT_EQ(g.tokens, tokens);
  EXPECT_EQ(g.manifest.at("taps"), "all");
  const nlohmann::json& cert = g.manifest.at("certification");
  EXPECT_GE(g.manifest.at("precision_bits").get<int>(), kDefaultPrecisionBits);
  EXPECT_EQ(g.manifest.at("precision_bits"), cert.at("precision_bits"));
  EXPECT_EQ(cert.at("values_certified").get<std::int64_t>(), numel) << "every tap value is certified";
  EXPECT_GE(cert.at("attempts").get<int>(), 1);
  // Before the work: the tokens and the estimated time, on the threads asked for.
  EXPECT_NE(r.err.find("kvfid golden: 5 tokens, about "), std::string::npos) << r.err;
}

TEST(CmdGolden, LogitsOnlyWritesOnlyTheLogits) {
  const std::string out = test::scratch_dir("cmd_golden_logits") + "/g";
  const auto r = test::run_kvfid({"golden", "--model", tiny_llama(), "--tokens", "1,2,3", "--out", out, "--taps", "logits"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Golden g = read_golden(out);
  ASSERT_EQ(g.taps.size(), 1u);
  EXPECT_EQ(g.taps[0].name, "logits");
  EXPECT_EQ(g.taps[0].shape, (std::vector<std::int64_t>{3, 256}));
  EXPECT_EQ(g.manifest.at("taps"), "logits");
}

// A list of names and globs records exactly the taps it matches (and logits), the same
// values as a golden of every tap, and the manifest keeps the list for regeneration.
TEST(CmdGolden, TapListRecordsTheMatchingTaps) {
  const std::string dir = test::scratch_dir("cmd_golden_list");
  const auto r = test::run_kvfid({"golden", "--model", tiny_llama(), "--prompt", short_prompt(), "--out", dir + "/g",
                                  "--taps", "layers.1.*,layers.0.k"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Golden g = read_golden(dir + "/g");
  const Golden all = read_golden(committed_short_golden());
  std::set<std::string> got;
  for (const TapTensor& t : g.taps) {
    got.insert(t.name);
    const TapTensor* same = find_tap(all.taps, t.name);
    ASSERT_NE(same, nullptr) << t.name;
    EXPECT_EQ(t.values, same->values) << t.name;
  }
  EXPECT_EQ(got, (std::set<std::string>{"logits", "layers.0.k", "layers.1.q", "layers.1.k", "layers.1.v",
                                        "layers.1.attn.probs", "layers.1.attn.out", "layers.1.out"}));
  EXPECT_EQ(g.manifest.at("taps"), "layers.1.*,layers.0.k");
}

// The golden is a function of (model, tokens, taps) only: two runs, with different
// thread counts, give the same bytes, and those are the committed golden's.
TEST(CmdGolden, SameInputGivesByteIdenticalTensors) {
  const std::string dir = test::scratch_dir("cmd_golden_twice");
  for (const std::string threads : {"0", "1"}) {
    const auto r = test::run_kvfid(
        {"golden", "--model", tiny_llama(), "--prompt", short_prompt(), "--out", dir + "/t" + threads, "--threads", threads});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  const std::string first = test::read_bytes(dir + "/t0/" + kGoldenTensorsFile);
  EXPECT_FALSE(first.empty());
  EXPECT_TRUE(first == test::read_bytes(dir + "/t1/" + kGoldenTensorsFile)) << "two runs differ";
  EXPECT_TRUE(first == test::read_bytes(committed_short_golden() + "/" + kGoldenTensorsFile))
      << "differs from the committed golden of the same model and prompt";
}

// By default the golden is proven (enclosures) and --certify agreement cross-checks it:
// both write the committed bytes, each manifest records its method, an enclosure how
// tight its balls were, agreement its guard.
TEST(CmdGolden, ProofByDefaultAndAgreementWriteTheSameBytes) {
  const std::string dir = test::scratch_dir("cmd_golden_methods");
  for (const std::string method : {"", "agreement"}) {
    SCOPED_TRACE(method.empty() ? "default" : method);
    std::vector<std::string> argv = {"golden", "--model", tiny_llama(), "--prompt", short_prompt(), "--out",
                                     dir + "/g" + method};
    if (!method.empty()) argv.insert(argv.end(), {"--certify", method});
    const auto r = test::run_kvfid(argv);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(test::read_bytes(dir + "/g" + method + "/" + kGoldenTensorsFile) ==
                test::read_bytes(committed_short_golden() + "/" + kGoldenTensorsFile));
    const Golden g = read_golden(dir + "/g" + method);
    const nlohmann::json& cert = g.manifest.at("certification");
    if (method.empty()) {
      EXPECT_EQ(cert.at("method_name"), "enclosure");
      EXPECT_FALSE(cert.contains("guard_bits"));
      const double radius = cert.at("max_radius_half_ulps").get<double>();
      EXPECT_GT(radius, 0.0);
      EXPECT_LT(radius, 1.0);  // every ball inside its float64 rounding interval
    } else {
      EXPECT_EQ(cert.at("method_name"), "agreement");
      EXPECT_EQ(cert.at("guard_bits"), 64);
      EXPECT_FALSE(cert.contains("max_radius_half_ulps"));
      EXPECT_NE(g.manifest.at("command").get<std::string>().find("--certify agreement"), std::string::npos);
    }
  }
}

// With --certify agreement, a low --bits request escalates (doubling until the guard-bits rerun certifies every
// value) and ends at the committed golden's bytes, computed at 128 bits: the golden does
// not depend on the precision it started from. The starting points make attempts at 58,
// 72 and 74 bits, where agreeing runs (an error bound of P - 2 bits) would already pass
// the 54-bit test for most or all values while the forward at P is not yet accurate to
// float64 rounding everywhere: only a real P + guard comparison decides there. (A build
// that compares the run at P with itself certifies --bits 37 at 74 bits, and its bytes
// differ from the committed golden's.)
TEST(CmdGolden, LowBitsEscalatesToTheCommittedGoldensBytes) {
  for (const int low_bits : {29, 36, 37}) {
    SCOPED_TRACE(testing::Message() << "--bits " << low_bits);
    const std::string out = test::scratch_dir("cmd_golden_low_bits_" + std::to_string(low_bits)) + "/g";
    const auto r = test::run_kvfid({"golden", "--model", tiny_llama(), "--prompt", short_prompt(), "--out", out,
                                    "--bits", std::to_string(low_bits), "--certify", "agreement"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(test::read_bytes(out + "/" + kGoldenTensorsFile) ==
                test::read_bytes(committed_short_golden() + "/" + kGoldenTensorsFile))
        << "differs from the committed 128-bit golden";

    const Golden g = read_golden(out);
    const nlohmann::json& cert = g.manifest.at("certification");
    const int attempts = cert.at("attempts").get<int>();
    const int precision = cert.at("precision_bits").get<int>();
    EXPECT_GT(attempts, 1) << low_bits << " bits certified float64 values";
    EXPECT_EQ(precision, low_bits << (attempts - 1)) << "the precision doubles per attempt";
    EXPECT_EQ(g.manifest.at("precision_bits"), precision);
    EXPECT_NE(g.manifest.at("command").get<std::string>().find("--bits " + std::to_string(low_bits)),
              std::string::npos);
    std::int64_t numel = 0;
    for (const TapTensor& t : g.taps) numel += t.numel();
    EXPECT_EQ(cert.at("values_certified").get<std::int64_t>(), numel);
    // A margin is err - 54 and err <= P - 2 (agreeing runs), so it is at most P - 56.
    EXPECT_GE(cert.at("min_margin_bits").get<long>(), 0);
    EXPECT_LE(cert.at("min_margin_bits").get<long>(), precision - 56);
  }
}

// Each refusal: exit 2, exactly one stderr line holding `culprit` and `problem`, and the
// scratch folder exactly as it was (no --out folder, no temporary sibling).
class CmdGoldenRefusal : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::scratch_dir("cmd_golden_refusal");
    out_ = dir_ + "/g";
  }
  void expect_refusal(const std::vector<std::string>& args, const std::string& culprit, const std::string& problem) {
    const std::set<std::string> before = entries(dir_);
    std::vector<std::string> argv = {"golden"};
    argv.insert(argv.end(), args.begin(), args.end());
    const test::CliResult r = test::run_kvfid(argv);
    EXPECT_EQ(r.exit_code, test::kExitBadInput) << r.err;
    const std::vector<std::string> lines = test::split_lines(r.err);
    ASSERT_EQ(lines.size(), 1u) << r.err;
    EXPECT_NE(lines[0].find(culprit), std::string::npos) << "'" << culprit << "' not in: " << lines[0];
    EXPECT_NE(lines[0].find(problem), std::string::npos) << "'" << problem << "' not in: " << lines[0];
    EXPECT_EQ(r.out, "");
    EXPECT_FALSE(fs::exists(out_));
    EXPECT_EQ(entries(dir_), before) << "something was written beside --out";
  }
  std::string dir_;
  std::string out_;
};

TEST_F(CmdGoldenRefusal, TokenOutOfRange) {
  expect_refusal({"--model", tiny_llama(), "--tokens", "1,256,3", "--out", out_}, "--tokens", "out of range");
}

TEST_F(CmdGoldenRefusal, TokenOutOfRangeInAPromptFile) {
  const std::string prompt = dir_ + "/bad.tokens";
  test::write_bytes(prompt, "# one id past tiny-llama's vocab of 256\n5, 256\n");
  expect_refusal({"--model", tiny_llama(), "--prompt", prompt, "--out", out_}, prompt, "out of range");
}

TEST_F(CmdGoldenRefusal, MoreTokensThanTheContext) {
  std::string ids = "1";
  for (int i = 1; i < 257; ++i) ids += ",1";  // tiny-llama's max_seq is 256
  expect_refusal({"--model", tiny_llama(), "--tokens", ids, "--out", out_}, "--tokens", "exceed the model's context");
}

TEST_F(CmdGoldenRefusal, EmptyTokenList) {
  // An empty value is refused for every option at parsing, naming the flag.
  expect_refusal({"--model", tiny_llama(), "--tokens", "", "--out", out_}, "--tokens", "is empty");
}

TEST_F(CmdGoldenRefusal, UnknownCertificationMethod) {
  expect_refusal({"--model", tiny_llama(), "--tokens", "1,2", "--out", out_, "--certify", "ziv"}, "--certify",
                 "enclosure or agreement");
}

TEST_F(CmdGoldenRefusal, BothTokensAndPrompt) {
  expect_refusal({"--model", tiny_llama(), "--tokens", "1,2", "--prompt", short_prompt(), "--out", out_}, "--prompt",
                 "exactly one");
}

TEST_F(CmdGoldenRefusal, GarbageModelFile) {
  const std::string model = dir_ + "/garbage.bin";
  test::write_bytes(model, std::string(4096, '\x5a'));
  // Which header check trips first depends on the garbage, so only the file is required.
  expect_refusal({"--model", model, "--tokens", "1,2", "--out", out_}, model, model);
}

TEST_F(CmdGoldenRefusal, ModelWithANaNWeight) {
  const std::string model = dir_ + "/nan-model";
  fs::copy(tiny_llama(), model);
  const std::string weights = model + "/model.safetensors";
  std::string bytes = test::read_bytes(weights);
  const std::string tensor = "model.layers.0.self_attn.q_proj.weight";
  const test::TensorBytes where = test::locate_tensor(bytes, tensor);
  ASSERT_EQ(where.dtype, "F32");
  constexpr std::size_t kElement = 5;
  ASSERT_GT(where.size, 4 * kElement);
  const unsigned char quiet_nan_f32[4] = {0x00, 0x00, 0xc0, 0x7f};  // 0x7fc00000, little-endian
  for (int i = 0; i < 4; ++i) bytes[where.offset + 4 * kElement + i] = char(quiet_nan_f32[i]);
  test::write_bytes(weights, bytes);
  expect_refusal({"--model", model, "--tokens", "1,2", "--out", out_}, weights, "NaN");
}

TEST_F(CmdGoldenRefusal, OutputFolderUnderARegularFile) {
  // Tests may run as root, where permission bits do not stop writes; a regular file
  // as the parent makes the folder unwritable for everyone.
  const std::string file = dir_ + "/plain-file";
  test::write_bytes(file, "not a folder\n");
  const std::set<std::string> before = entries(dir_);
  const std::string out = file + "/g";
  const auto r = test::run_kvfid({"golden", "--model", tiny_llama(), "--tokens", "1,2", "--out", out});
  EXPECT_EQ(r.exit_code, test::kExitBadInput) << r.err;
  const std::vector<std::string> lines = test::split_lines(r.err);
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_NE(lines[0].find(out), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("parent folder does not exist"), std::string::npos) << lines[0];
  EXPECT_EQ(entries(dir_), before);
  EXPECT_EQ(test::read_bytes(file), "not a folder\n");
}

TEST_F(CmdGoldenRefusal, TapPatternMatchingNothing) {
  expect_refusal({"--model", tiny_llama(), "--tokens", "1,2", "--out", out_, "--taps", "logits,some"}, "--taps",
                 "'some' matches no tap");
  // tiny-llama has layers 0 and 1 only.
  expect_refusal({"--model", tiny_llama(), "--tokens", "1,2", "--out", out_, "--taps", "layers.2.*"}, "--taps",
                 "'layers.2.*' matches no tap");
}

TEST_F(CmdGoldenRefusal, MalformedTapList) {
  expect_refusal({"--model", tiny_llama(), "--tokens", "1,2", "--out", out_, "--taps", "logits,,layers.0.q"}, "--taps",
                 "empty item");
}

}  // namespace
}  // namespace kvfid::cli
