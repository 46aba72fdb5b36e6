#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "reference/io/load_model.h"
#include "tests/common/model_files.h"
#include "tests/common/run_cli.h"
#include "tests/common/test_env.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the specification's names: the layer below
namespace {

// Qwen2.5-7B's config.json as published, without its 15 GB of weights.
constexpr const char* kQwen25_7bConfig = R"({
  "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
  "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 3584, "initializer_range": 0.02,
  "intermediate_size": 18944, "max_position_embeddings": 131072, "max_window_layers": 28,
  "model_type": "qwen2", "num_attention_heads": 28, "num_hidden_layers": 28, "num_key_value_heads": 4,
  "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 131072, "tie_word_embeddings": false,
  "torch_dtype": "bfloat16", "transformers_version": "4.43.1", "use_cache": true,
  "use_sliding_window": false, "vocab_size": 152064})";

TEST(CmdInfo, ConfigOnlyFolderOfABigModel) {
  const std::string dir = test::scratch_dir("info_qwen");
  test::write_bytes(dir + "/config.json", kQwen25_7bConfig);
  const auto r = test::run_kvfid({"info", "--model", dir, "--json", dir + "/info.json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("arch: qwen2\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("n_kv_heads: 4\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("FP16  57344 bytes  56 KiB  16 bits per element\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("FP32  114688 bytes  112 KiB  32 bits per element\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Q8_0  30464 bytes  29.75 KiB  8.5 bits per element\n"), std::string::npos) << r.out;  // 57344 * 8.5 / 16

  const auto j = nlohmann::json::parse(test::read_bytes(dir + "/info.json"));
  EXPECT_EQ(j["kv_cache_per_token"]["FP16"]["bytes"].get<double>(), 57344.0);
  EXPECT_EQ(j["kv_cache_per_token"]["Q4_0"]["bits_per_element"].get<double>(), 4.5);
  EXPECT_EQ(j["config"]["head_dim"].get<int>(), 128);
  EXPECT_EQ(j["parameter_count"].get<std::int64_t>(), load_model_config(dir).parameter_count());
}

// --kv: any policy, its bytes from the formats' own block layouts. tiny-qwen2's K/V row
// has 16 elements, so a block of 32 is padded (row_blocks.h) and costs twice its nominal
// bits; the edges stay f16; a rotation costs nothing.
TEST(CmdInfo, KvPoliciesCountTheirBlocksAsStored) {
  const std::string dir = test::scratch_dir("info_kv");
  const auto r = test::run_kvfid({"info", "--model", test::fixtures_dir() + "/tiny-qwen2", "--kv",
                                  "q8_0,q4_0+rot=hadamard,k=q8_0+v=f16+edges=1:f32", "--json", dir + "/info.json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // 2 layers x (K + V) x one block: q8_0 34 bytes, q4_0 18 bytes, for 16 elements.
  EXPECT_NE(r.out.find("  q8_0"), std::string::npos) << r.out;
  const auto j = nlohmann::json::parse(test::read_bytes(dir + "/info.json"));
  EXPECT_EQ(j["kv_cache_per_token"]["q8_0"]["bytes"].get<double>(), 2 * 2 * 34.0);
  EXPECT_EQ(j["kv_cache_per_token"]["q8_0"]["bits_per_element"].get<double>(), 17.0);
  EXPECT_EQ(j["kv_cache_per_token"]["q4_0+rot=hadamard"]["bytes"].get<double>(), 2 * 2 * 18.0);
  EXPECT_EQ(j["kv_cache_per_token"]["k=q8_0+v=f16+edges=1:f32"]["bytes"].get<double>(), 2 * 2 * 16 * 4.0);  // both layers are edges
  const auto bad = test::run_kvfid({"info", "--model", test::fixtures_dir() + "/tiny-qwen2", "--kv", "q4_0+rot=spin"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("unknown rotation 'spin'"), std::string::npos) << bad.err;
}

// An eviction keeps the bytes per cached token and says how many tokens stay cached.
TEST(CmdInfo, AnEvictionSaysHowManyTokensStayCached) {
  const std::string dir = test::scratch_dir("info_evict");
  const auto r = test::run_kvfid({"info", "--model", test::fixtures_dir() + "/tiny-qwen2", "--kv",
                                  "q8_0+evict=streaming:4,60,f16+evict=h2o:25%", "--json", dir + "/info.json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(test::read_bytes(dir + "/info.json"));
  EXPECT_EQ(j["kv_cache_per_token"]["q8_0+evict=streaming:4,60"]["bytes"].get<double>(), 2 * 2 * 34.0);
  EXPECT_EQ(j["kv_cache_per_token"]["q8_0+evict=streaming:4,60"]["cached_at_most"], "64 tokens");
  EXPECT_EQ(j["kv_cache_per_token"]["f16+evict=h2o:25%"]["cached_at_most"], "ceil(25% of the sequence) + 1 tokens");
  EXPECT_FALSE(j.at("kv_cache_per_token").at("FP16").contains("cached_at_most"));
  // The window cache of a windowed model: its window on a windowed layer.
  const auto w = test::run_kvfid({"info", "--model", test::fixtures_dir() + "/tiny-gemma2", "--kv", "f16+evict=window",
                                  "--json", dir + "/window.json"});
  ASSERT_EQ(w.exit_code, 0) << w.err;
  EXPECT_EQ(nlohmann::json::parse(test::read_bytes(dir + "/window.json"))["kv_cache_per_token"]["f16+evict=window"]
                                                                          ["cached_at_most"],
            "5 tokens on a windowed layer (every token on a global one)");
  const auto refused = test::run_kvfid({"info", "--model", test::fixtures_dir() + "/tiny-gemma2", "--kv", "f16+evict=h2o:4"});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find("--kv: eviction 'h2o:4' on a model with its own sliding window"), std::string::npos)
      << refused.err;
}

// A latent-attention model's cache is its latent rows: 2 layers x (32 + 8) values, 160
// bytes a token in FP16, against 640 for the K and V (4 heads x (24 + 16)) they stand for.
// KV policies of latent rows are not printed yet: --kv is refused naming itself.
TEST(CmdInfo, ALatentCacheIsItsRows) {
  const std::string dir = test::scratch_dir("info_mla");
  const auto r = test::run_kvfid({"info", "--model", test::fixtures_dir() + "/tiny-mla", "--json", dir + "/info.json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("40 values a layer, against 160 for the K and V they reconstruct"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("FP16  160 bytes  0.15625 KiB  16 bits per element  (K and V: 640 bytes)"), std::string::npos)
      << r.out;
  const auto j = nlohmann::json::parse(test::read_bytes(dir + "/info.json"));
  EXPECT_EQ(j["kv_cache_per_token"]["FP32"]["bytes"].get<double>(), 320.0);
  EXPECT_EQ(j["config"]["latent_attention"]["kv_lora_rank"], 32);
  const auto refused = test::run_kvfid({"info", "--model", test::fixtures_dir() + "/tiny-mla", "--kv", "q8_0"});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find("--kv"), std::string::npos) << refused.err;
}

TEST(CmdInfo, Stories260KHeader) {
  auto path = test::stories260k_path();
  if (!path) GTEST_SKIP() << test::kStoriesMissing;
  const auto r = test::run_kvfid({"info", "--model", *path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const ModelConfig c = load_model_config(*path);
  EXPECT_NE(r.out.find("parameters: " + std::to_string(c.parameter_count()) + "\n"), std::string::npos) << r.out;
  // 2 x 5 layers x 4 KV heads x 8 dims x 4 bytes.
  EXPECT_NE(r.out.find("FP32  1280 bytes  1.25 KiB  32 bits per element\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rope: interleaved\n"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace kvfid::cli
