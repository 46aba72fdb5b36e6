// Broken model inputs, each made by writing a valid synthetic model and damaging it:
// every one must be refused with one line naming the file and the problem.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "reference/io/hf.h"
#include "reference/util/input_error.h"
#include "reference/io/load_model.h"
#include "reference/io/safetensors.h"
#include "tests/common/model_files.h"
#include "tests/common/test_env.h"

namespace kvfid::ref {
namespace {
namespace fs = std::filesystem;

void expect_rejected(const std::string& path, const std::string& source, const std::vector<std::string>& fragments) {
  try {
    load_model(path);
    ADD_FAILURE() << path << " was accepted";
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_EQ(e.source(), source) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    for (const auto& f : fragments) EXPECT_NE(what.find(f), std::string::npos) << "'" << f << "' not in: " << what;
  }
}

class BadLlama2c : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::scratch_dir("bad_llama2c");
    good_ = test::encode_llama2c(make_synthetic_model(test::tiny_llama2c_config(true), test::test_seed()));
  }
  std::string write(const std::string& name, const std::string& bytes) {
    test::write_bytes(dir_ + "/" + name, bytes);
    return dir_ + "/" + name;
  }
  std::string with_float(std::size_t float_index, float value) {
    std::string bytes = good_;
    std::memcpy(bytes.data() + 28 + 4 * float_index, &value, 4);
    return bytes;
  }
  std::string dir_;
  std::string good_;  // tiny_llama2c_config(true): vocab 256, dim 64, 2 layers
};

TEST_F(BadLlama2c, TruncatedFileNamesExpectedAndActualBytes) {
  const std::string path = write("truncated.bin", good_.substr(0, good_.size() - 4));
  expect_rejected(path, path, {"truncated", std::to_string(good_.size() - 4), std::to_string(good_.size())});
}

TEST_F(BadLlama2c, TrailingBytesAreRefused) {
  const std::string path = write("trailing.bin", good_ + "junk");
  expect_rejected(path, path, {"trailing", std::to_string(good_.size() + 4), std::to_string(good_.size())});
}

TEST_F(BadLlama2c, GarbageIsRefused) {
  SCOPED_TRACE(test::seed_trace());
  std::string garbage(4096, '\0');
  std::uint64_t s = test::test_seed();
  for (char& c : garbage) c = char((s = s * 6364136223846793005ull + 1442695040888963407ull) >> 56);
  const std::string path = write("garbage.bin", garbage);
  expect_rejected(path, path, {});
  const std::string tiny = write("tiny.bin", "0123456789");
  expect_rejected(tiny, tiny, {"shorter than the 28-byte header"});
}

TEST_F(BadLlama2c, NaNAndInfAreNamedByTensorAndIndex) {
  const std::size_t wq = 256 * 64 + 2 * 64;  // after token_embedding and rms_att
  const std::string nan = write("nan.bin", with_float(wq + 5, std::numeric_limits<float>::quiet_NaN()));
  expect_rejected(nan, nan, {"tensor 'wq' element 5 ", "NaN"});
  const std::string inf = write("inf.bin", with_float(7, -std::numeric_limits<float>::infinity()));
  expect_rejected(inf, inf, {"tensor 'token_embedding' element 7 ", "-Inf"});
}

class BadHf : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::scratch_dir("bad_hf") + "/model";
    write_hf_model(dir_, make_synthetic_model(synthetic_shape("tiny-llama"), test::test_seed()), FloatFormat::f32);
  }
  std::string config_path() const { return dir_ + "/config.json"; }
  std::string weights_path() const { return dir_ + "/model.safetensors"; }
  void edit_config(const std::function<void(nlohmann::json&)>& edit) {
    nlohmann::json j = nlohmann::json::parse(test::read_bytes(config_path()));
    edit(j);
    test::write_bytes(config_path(), j.dump());
  }
  void edit_tensors(const std::function<void(std::map<std::string, Tensor>&)>& edit) {
    SafetensorsFile f = read_safetensors(weights_path());
    edit(f.tensors);
    write_safetensors(weights_path(), {f.tensors.begin(), f.tensors.end()});
  }
  void set_f32(const std::string& tensor, std::size_t index, float value) {
    edit_tensors([&](auto& t) { std::memcpy(t.at(tensor).bytes.data() + 4 * index, &value, 4); });
  }
  std::string dir_;
};

TEST_F(BadHf, ConfigDimsThatDisagreeWithTensorsNameTheTensorAndBothShapes) {
  edit_config([](nlohmann::json& j) { j["intermediate_size"] = 180; });
  expect_rejected(dir_, weights_path(), {"tensor 'model.layers.0.mlp.gate_proj.weight'", "[172, 64]", "[180, 64]"});
}

TEST_F(BadHf, UnknownArchitectureIsRefused) {
  edit_config([](nlohmann::json& j) { j["architectures"] = {"GemmaForCausalLM"}; });
  expect_rejected(dir_, config_path(), {"unknown architecture 'GemmaForCausalLM'"});
}

TEST_F(BadHf, NaNWeightIsNamed) {
  set_f32("model.layers.1.self_attn.k_proj.weight", 42, std::numeric_limits<float>::quiet_NaN());
  expect_rejected(dir_, weights_path(), {"tensor 'model.layers.1.self_attn.k_proj.weight' element 42 ", "NaN"});
}

TEST_F(BadHf, InfWeightIsNamed) {
  set_f32("model.norm.weight", 3, std::numeric_limits<float>::infinity());
  expect_rejected(dir_, weights_path(), {"tensor 'model.norm.weight' element 3 ", "Inf"});
}

TEST_F(BadHf, MissingTensorIsNamed) {
  edit_tensors([](auto& t) { t.erase("model.layers.1.self_attn.v_proj.weight"); });
  expect_rejected(dir_, weights_path(), {"missing tensor 'model.layers.1.self_attn.v_proj.weight'"});
}

TEST_F(BadHf, UnexpectedTensorIsNamed) {
  edit_tensors([](auto& t) { t.emplace("model.layers.0.self_attn.o_proj.bias", tensor_f32({64}, std::vector<float>(64))); });
  expect_rejected(dir_, weights_path(), {"unexpected tensor 'model.layers.0.self_attn.o_proj.bias'"});
}

TEST_F(BadHf, UnsupportedDtypeIsNamed) {
  edit_tensors([](auto& t) { t["model.norm.weight"] = tensor_f64({64}, std::vector<double>(64, 1.0)); });
  expect_rejected(dir_, weights_path(), {"tensor 'model.norm.weight'", "F64"});
}

TEST_F(BadHf, MissingConfigIsNamed) {
  fs::remove(config_path());
  expect_rejected(dir_, config_path(), {"missing"});
}

TEST_F(BadHf, MalformedConfigIsRefused) {
  test::write_bytes(config_path(), "{\"architectures\": [\"LlamaForCausalLM\"], ");
  expect_rejected(dir_, config_path(), {"not valid JSON"});
}

TEST_F(BadHf, UnsupportedFeaturesAreRefusedNotIgnored) {
  // RoPE scalings other than llama3 are refused naming the type; llama3 needs its fields.
  edit_config([](nlohmann::json& j) { j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}}; });
  expect_rejected(dir_, config_path(), {"rope_scaling type 'yarn' is not supported"});
  edit_config([](nlohmann::json& j) { j["rope_scaling"] = {{"type", "linear"}, {"factor", 4.0}}; });
  expect_rejected(dir_, config_path(), {"rope_scaling type 'linear' is not supported"});
  edit_config([](nlohmann::json& j) { j["rope_scaling"] = {{"factor", 4.0}}; });
  expect_rejected(dir_, config_path(), {"no \"rope_type\""});
  edit_config([](nlohmann::json& j) { j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}}; });
  expect_rejected(dir_, config_path(), {"missing field \"low_freq_factor\""});
  edit_config([](nlohmann::json& j) {
    j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 4.0}, {"high_freq_factor", 1.0},
                         {"original_max_position_embeddings", 8192}};
  });
  expect_rejected(dir_, config_path(), {"low_freq_factor < high_freq_factor"});
  edit_config([](nlohmann::json& j) {
    j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 0.5}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                         {"original_max_position_embeddings", 8192}};
  });
  expect_rejected(dir_, config_path(), {"factor must be a finite number >= 1"});
  edit_config([](nlohmann::json& j) { j["rope_scaling"] = nullptr, j["use_sliding_window"] = true; });
  expect_rejected(dir_, config_path(), {"use_sliding_window"});
}

TEST_F(BadHf, NonPositiveDimensionIsRefused) {
  edit_config([](nlohmann::json& j) { j["num_hidden_layers"] = 0; });
  expect_rejected(dir_, config_path(), {"num_hidden_layers"});
}

TEST_F(BadHf, DeeplyNestedConfigIsOneLineNotAStackOverflow) {
  std::string text = test::read_bytes(config_path());
  const std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
  text.insert(text.rfind('}'), ", \"rope_scaling\": " + deep);
  test::write_bytes(config_path(), text);
  expect_rejected(dir_, config_path(), {"nests deeper than 64 levels"});
}

TEST_F(BadHf, UnsupportedValuesAreDescribedNotSerialized) {
  edit_config([](nlohmann::json& j) { j["rope_scaling"] = {{"rope_type", std::string(100'000, 'x')}}; });
  expect_rejected(dir_, config_path(), {"rope_scaling type '" + std::string(40, 'x') + "... (100000 bytes)'"});
  edit_config([](nlohmann::json& j) { j["rope_scaling"] = nullptr, j["mlp_bias"] = {{"a", std::string(100'000, 'x')}}; });
  expect_rejected(dir_, config_path(), {"field \"mlp_bias\" = an object of 1 members is not supported"});
  edit_config([](nlohmann::json& j) { j.erase("mlp_bias"), j["rms_norm_eps"] = std::string(100'000, 'y'); });
  expect_rejected(dir_, config_path(), {"\"" + std::string(40, 'y') + "... (100000 bytes)\""});
}

TEST_F(BadHf, HeadsTimesHeadDimThatOverflowsIntIsRefused) {
  // 65536 x 65536 wrapped an int to 0: kvfid info printed 0 KV bytes per token.
  edit_config([](nlohmann::json& j) {
    j["num_attention_heads"] = 65536, j["num_key_value_heads"] = 65536, j["head_dim"] = 65536;
  });
  expect_rejected(dir_, config_path(), {"n_heads x head_dim (65536 x 65536) exceeds 2147483647"});
}

}  // namespace
}  // namespace kvfid::ref
