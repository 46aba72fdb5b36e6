#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/common/model_files.h"
#include "tests/common/run_cli.h"
#include "tests/common/test_env.h"
#include "tests/tools/kvfid/fidelity_scratch.h"

namespace kvfid::cli {
namespace {

TEST(CmdCheck, TheTwinPassesTheGateAtEachKvFormat) {
  const auto& s = test::fidelity_scratch();
  for (const char* kv : {"f32", "f16", "bf16"}) {
    const auto r = test::run_kvfid({"check", "--model", s.model, "--golden", s.golden, "--engine", "twin", "--kv", kv});
    EXPECT_EQ(r.exit_code, 0) << "--kv " << kv << "\n" << r.out << r.err;
  }
}

// Quantized KV policies against the unquantized golden: the baseline stores K and V
// the same way, so the gate measures the engine's own error on top of quantization.
TEST(CmdCheck, TheTwinPassesTheGateUnderQuantizedKvPolicies) {
  const auto& s = test::fidelity_scratch();
  for (const char* kv : {"q8_0", "k=q8_0+v=f16+hot=2", "q8_0+edges=1:bf16"}) {
    const auto r = test::run_kvfid({"check", "--model", s.model, "--golden", s.golden, "--engine", "twin", "--kv", kv});
    EXPECT_EQ(r.exit_code, 0) << "--kv " << kv << "\n" << r.out << r.err;
  }
}

TEST(CmdCheck, ChunkedPrefillPassesToo) {
  const auto& s = test::fidelity_scratch();
  const auto r = test::run_kvfid({"check", "--model", s.model, "--golden", s.golden, "--engine", "twin", "--chunk", "2"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

// A golden of a tap list: the engine is checked on exactly those taps (layer 1 here),
// none of layer 0's appear in the report, and the gate passes.
TEST(CmdCheck, AGoldenOfATapListIsCheckedOnItsTaps) {
  const std::string dir = test::scratch_dir("cmd_check_tap_list");
  const std::string model = test::fixtures_dir() + "/tiny-qwen2";
  ASSERT_EQ(test::run_kvfid({"golden", "--model", model, "--tokens", "39,113,89,42", "--taps", "logits,layers.1.*",
                             "--out", dir + "/g"})
                .exit_code,
            0);
  const auto r = test::run_kvfid({"check", "--model", model, "--golden", dir + "/g", "--engine", "twin"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("layers.1.attn.probs"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("layers.0."), std::string::npos) << r.out;
}

// The sha256 covers the weights alone: the same weights under an edited config.json (here
// tiny-llama3 without its Llama 3 RoPE scaling) are another model. The baseline would run
// that model too and the gate would pass, so the config is held to the golden's.
TEST(CmdCheck, AnEditedConfigIsNotTheGoldensModel) {
  const std::string dir = test::scratch_dir("cmd_check_edited_config") + "/m";
  std::filesystem::create_directories(dir);
  const std::string fixture = test::fixtures_dir() + "/tiny-llama3";
  std::filesystem::copy_file(fixture + "/model.safetensors", dir + "/model.safetensors");
  nlohmann::json config = nlohmann::json::parse(test::read_bytes(fixture + "/config.json"));
  ASSERT_TRUE(config.contains("rope_scaling"));
  config.erase("rope_scaling");
  test::write_bytes(dir + "/config.json", config.dump());
  const std::string golden = test::golden_dir() + "/tiny-llama3/short";
  const auto r = test::run_kvfid({"check", "--model", dir, "--golden", golden, "--engine", "twin"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("its config differs from the golden's model"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("rope_scaling"), std::string::npos) << r.err;
  const auto same = test::run_kvfid({"check", "--model", fixture, "--golden", golden, "--engine", "twin"});
  EXPECT_EQ(same.exit_code, 0) << same.out << same.err;
}

TEST(CmdCheck, BadFlagsExitTwo) {
  const auto& s = test::fidelity_scratch();
  EXPECT_EQ(test::run_kvfid({"check", "--model", s.model, "--golden", s.golden, "--engine", "tpu"}).exit_code, 2);
  EXPECT_EQ(test::run_kvfid({"check", "--model", s.model, "--golden", s.golden, "--engine", "twin", "--chunk", "-1"})
                .exit_code,
            2);
  EXPECT_EQ(test::run_kvfid({"check", "--model", s.model, "--golden", s.golden}).exit_code, 2);  // --engine required
  // tiny-llama's hidden size 172 is no multiple of q8_0's 32; kv_dim 64 is, hot=0 is no window.
  const auto weights = test::run_kvfid({"check", "--model", s.model, "--golden", s.golden, "--engine", "twin",
                                        "--weights", "q8_0"});
  EXPECT_EQ(weights.exit_code, 2);
  EXPECT_NE(weights.err.find("172 columns of hidden"), std::string::npos) << weights.err;
  const auto kv = test::run_kvfid({"check", "--model", s.model, "--golden", s.golden, "--engine", "twin", "--kv",
                                   "q8_0+hot=0"});
  EXPECT_EQ(kv.exit_code, 2);
  EXPECT_NE(kv.err.find("--kv"), std::string::npos) << kv.err;
}

}  // namespace
}  // namespace kvfid::cli
