#include <cmath>
#include <filesystem>

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

namespace kvfid {
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

}  // namespace
}  // namespace kvfid
