#include <cmath>
#include <filesystem>
#include <functional>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "reference/golden/taps.h"
#include "reference/io/safetensors.h"
#include "reference/synth/synthetic_model.h"
#include "reference/synth/synthetic_shapes.h"
#include "tests/common/model_files.h"
#include "tests/common/run_cli.h"
#include "tests/common/test_env.h"
#include "tests/tools/kvfid/fidelity_scratch.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the specification's names: the layer below
namespace {

// A relative change of 1e-3 in one value is about 8000 FP32 ULPs: far beyond twice the
// FP32 baseline's error (a few ULPs) and its floor (4 ULPs), so the gate must catch it.
constexpr double kPerturbation = 1e-3;

// The twin's dump with the largest value of one tap scaled by 1 + kPerturbation.
std::string perturbed_candidate(const std::string& tap, const std::string& out) {
  SafetensorsFile file = read_safetensors(test::fidelity_scratch().candidate);
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (auto& [name, tensor] : file.tensors) {
    if (name == tap) {
      std::vector<double> values = tensor_values(tensor, name);
      std::size_t largest = 0;
      for (std::size_t i = 0; i < values.size(); ++i)
        if (std::fabs(values[i]) > std::fabs(values[largest])) largest = i;
      std::vector<float> f32(values.begin(), values.end());
      f32[largest] = float(values[largest] * (1 + kPerturbation));
      tensor = tensor_f32(tensor.shape, f32);
    }
    tensors.emplace_back(name, tensor);
  }
  write_safetensors(out, tensors);
  return out;
}

std::vector<std::string> fail_lines(const std::string& out) {
  std::vector<std::string> lines;
  for (const auto& line : test::split_lines(out))
    if (line.rfind("FAIL ", 0) == 0) lines.push_back(line);
  return lines;
}

TEST(CmdCompare, TheTwinsOwnDumpPasses) {
  const auto& s = test::fidelity_scratch();
  const auto r = test::run_kvfid({"compare", "--golden", s.golden, "--candidate", s.candidate});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(fail_lines(r.out).empty()) << r.out;
}

TEST(CmdCompare, OnePerturbedTapFailsAndIsNamed) {
  const auto& s = test::fidelity_scratch();
  const int last_layer = synthetic_shape("tiny-llama").n_layers - 1;
  const std::string tap = tap_layer_name(last_layer, "attn.out");
  const std::string dir = test::scratch_dir("compare_perturbed");
  const std::string candidate = perturbed_candidate(tap, dir + "/perturbed.safetensors");
  const auto r = test::run_kvfid({"compare", "--golden", s.golden, "--candidate", candidate, "--json",
                                  dir + "/report.json", "--junit", dir + "/report.xml"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  const auto lines = fail_lines(r.out);
  ASSERT_FALSE(lines.empty()) << r.out;
  for (const auto& line : lines) EXPECT_EQ(line.rfind("FAIL " + tap + " ", 0), 0u) << line;
  EXPECT_NE(r.out.find("FAIL " + tap + " max_abs "), std::string::npos) << r.out;

  const auto json = nlohmann::json::parse(test::read_bytes(dir + "/report.json"));
  EXPECT_EQ(json.at("pass"), false);
  EXPECT_EQ(json.at("failures").get<int>(), int(lines.size()));
  const std::string junit = test::read_bytes(dir + "/report.xml");
  EXPECT_NE(junit.find("failures=\"" + std::to_string(lines.size()) + "\""), std::string::npos);
}

TEST(CmdCompare, BadInputExitsTwoAndWritesNoReport) {
  const auto& s = test::fidelity_scratch();
  const std::string dir = test::scratch_dir("compare_bad");
  const auto missing = test::run_kvfid({"compare", "--golden", s.golden, "--candidate", dir + "/none.safetensors",
                                        "--json", dir + "/report.json"});
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
  EXPECT_NE(missing.err.find("none.safetensors"), std::string::npos) << missing.err;
  EXPECT_FALSE(std::filesystem::exists(dir + "/report.json"));
  const auto no_folder = test::run_kvfid({"compare", "--golden", s.golden, "--candidate", s.candidate,
                                          "--junit", dir + "/no/such/report.xml"});
  EXPECT_EQ(no_folder.exit_code, 2) << no_folder.err;
  EXPECT_NE(no_folder.err.find("--junit"), std::string::npos) << no_folder.err;
  const auto bad_format = test::run_kvfid({"compare", "--golden", s.golden, "--candidate", s.candidate, "--kv", "f8"});
  EXPECT_EQ(bad_format.exit_code, 2) << bad_format.err;
}

TEST(CmdCompare, AnotherModelThanTheGoldensIsBadInputNamingBothHashes) {
  const auto& s = test::fidelity_scratch();
  const std::string dir = test::scratch_dir("compare_other_model");
  ASSERT_EQ(test::run_kvfid({"fixture", "--shape", "tiny-mqa", "--seed", "3", "--out", dir + "/tiny-mqa"}).exit_code, 0);
  const auto r = test::run_kvfid({"compare", "--golden", s.golden, "--candidate", s.candidate, "--model",
                                  dir + "/tiny-mqa"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("model_sha256"), std::string::npos) << r.err;
  EXPECT_EQ(test::split_lines(r.err).size(), 2u) << r.err;  // progress line + the one-line error
}

// A copy of the scratch golden whose manifest.json is `edit` applied to its text.
std::string golden_with_manifest(const std::string& dir, const std::function<std::string(std::string)>& edit) {
  const std::string golden = dir + "/golden";
  std::filesystem::copy(test::fidelity_scratch().golden, golden);
  test::write_bytes(golden + "/manifest.json", edit(test::read_bytes(golden + "/manifest.json")));
  return golden;
}

// The manifest text with its token list replaced by `tokens` (raw JSON).
std::string with_tokens(std::string manifest, const std::string& tokens) {
  const std::size_t begin = manifest.find('[', manifest.find("\"tokens\"")), end = manifest.find(']', begin);
  return manifest.replace(begin, end - begin + 1, tokens);
}

void expect_refused_without_report(const test::CliResult& r, const std::string& names, const std::string& report) {
  EXPECT_EQ(r.exit_code, 2) << r.err.substr(0, 400);
  const auto lines = test::split_lines(r.err);
  ASSERT_EQ(lines.size(), 1u) << r.err.substr(0, 400);
  EXPECT_NE(lines[0].find(names), std::string::npos) << lines[0];
  EXPECT_LT(lines[0].size(), 400u);
  EXPECT_FALSE(std::filesystem::exists(report));
}

TEST(CmdCompare, ManifestTokensOutsideZeroToIntMaxAreBadInputNamingTheManifest) {
  // -1 (and 2^31, read as INT_MIN) once indexed the embedding out of bounds.
  const auto& s = test::fidelity_scratch();
  for (const std::string tokens : {"[1, -1]", "[1, 2147483648]", "[1, 2.5]"}) {
    const std::string dir = test::scratch_dir("compare_bad_tokens");
    const std::string golden = golden_with_manifest(dir, [&](std::string m) { return with_tokens(m, tokens); });
    expect_refused_without_report(
        test::run_kvfid({"compare", "--golden", golden, "--candidate", s.candidate, "--json", dir + "/r.json"}),
        golden + "/manifest.json", dir + "/r.json");
    expect_refused_without_report(test::run_kvfid({"check", "--golden", golden, "--model", s.model, "--engine", "twin",
                                                   "--json", dir + "/r.json"}),
                                  golden + "/manifest.json", dir + "/r.json");
  }
}

TEST(CmdCompare, DeeplyNestedManifestIsBadInputNotASegfault) {
  const auto& s = test::fidelity_scratch();
  const std::string dir = test::scratch_dir("compare_deep_manifest");
  const std::string golden = golden_with_manifest(dir, [](std::string m) {
    return m.insert(m.find('{') + 1, "\"x\": " + std::string(100'000, '[') + std::string(100'000, ']') + ", ");
  });
  expect_refused_without_report(
      test::run_kvfid({"compare", "--golden", golden, "--candidate", s.candidate, "--json", dir + "/r.json"}),
      golden + "/manifest.json", dir + "/r.json");
}

TEST(CmdCompare, CandidateWhoseShapeTimesElementSizeWrapsIsBadInput) {
  // [2^61] F64 needs 2^64 bytes, which wrapped to the 0 of offsets [0, 0]: compare then
  // died on an uncaught std::length_error.
  const auto& s = test::fidelity_scratch();
  const std::string dir = test::scratch_dir("compare_wrapping_shape");
  const std::string header = R"({"logits":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}})";
  std::string bytes(8, '\0');
  bytes[0] = char(header.size());
  const std::string candidate = dir + "/c.safetensors";
  test::write_bytes(candidate, bytes + header);
  expect_refused_without_report(
      test::run_kvfid({"compare", "--golden", s.golden, "--candidate", candidate, "--json", dir + "/r.json"}), candidate,
      dir + "/r.json");
}

TEST(CmdCompare, JsonReportCopiesOnlyTheManifestFieldsItNeeds) {
  // 200 KB of nested padding in the manifest once drove compare --json to 4.2 GB.
  const auto& s = test::fidelity_scratch();
  const std::string dir = test::scratch_dir("compare_large_manifest");
  std::string padding = "[";
  for (int i = 0; i < 5000; ++i) padding += std::string(i ? "," : "") + std::string(20, '[') + std::string(20, ']');
  padding += "]";
  const std::string golden =
      golden_with_manifest(dir, [&](std::string m) { return m.insert(m.find('{') + 1, "\"padding\": " + padding + ", "); });
  const auto r = test::run_kvfid({"compare", "--golden", golden, "--candidate", s.candidate, "--json", dir + "/r.json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string report = test::read_bytes(dir + "/r.json");
  EXPECT_LT(report.size(), 200'000u);
  const auto json = nlohmann::json::parse(report);
  EXPECT_FALSE(json.at("golden").contains("padding"));
  EXPECT_EQ(json.at("golden").at("n_tokens"), s.tokens.size());
  EXPECT_EQ(json.at("golden").at("model_sha256"), nlohmann::json::parse(test::read_bytes(s.golden + "/manifest.json")).at("model_sha256"));
}

}  // namespace
}  // namespace kvfid::cli
