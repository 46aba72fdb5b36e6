#include "reference/io/hf.h"

#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "reference/util/input_error.h"
#include "reference/io/safetensors.h"
#include "reference/synth/synthetic_model.h"
#include "reference/synth/synthetic_shapes.h"
#include "tests/common/model_files.h"
#include "tests/common/test_env.h"

namespace kvfid::ref {
namespace {
namespace fs = std::filesystem;

struct StorageCase {
  FloatFormat storage;
  SynthPrecision precision;
  DType dtype;
};
constexpr StorageCase kStorageCases[] = {{FloatFormat::f32, SynthPrecision::f32, DType::F32},
                                         {FloatFormat::f16, SynthPrecision::f16, DType::F16},
                                         {FloatFormat::bf16, SynthPrecision::bf16, DType::BF16}};

TEST(HfModel, RoundTripIsExactForEveryStorageFormat) {
  SCOPED_TRACE(test::seed_trace());
  const std::string root = test::scratch_dir("hf_roundtrip");
  for (const StorageCase& sc : kStorageCases) {
    SCOPED_TRACE(to_string(sc.storage));
    const Model m = make_synthetic_model(synthetic_shape("tiny-llama"), test::test_seed(), {.precision = sc.precision});
    const std::string dir = root + "/" + to_string(sc.storage);
    write_hf_model(dir, m, sc.storage);
    const SafetensorsFile st = read_safetensors(dir + "/" + kHfWeightsFile);
    EXPECT_EQ(st.get("model.layers.1.mlp.down_proj.weight").dtype, sc.dtype);
    EXPECT_EQ(st.get("model.layers.1.mlp.down_proj.weight").shape, (std::vector<std::int64_t>{64, 172}));
    test::expect_same_model(m, read_hf_model(dir));
  }
}

TEST(HfModel, Qwen2BiasRoundTrips) {
  SCOPED_TRACE(test::seed_trace());
  const std::string dir = test::scratch_dir("hf_qwen2");
  const Model m = make_synthetic_model(synthetic_shape("tiny-qwen2"), test::test_seed());
  ASSERT_TRUE(m.config.qkv_bias);
  write_hf_model(dir, m, FloatFormat::f32);
  const SafetensorsFile st = read_safetensors(dir + "/" + kHfWeightsFile);
  EXPECT_EQ(st.get("model.layers.0.self_attn.k_proj.bias").shape, (std::vector<std::int64_t>{16}));
  const Model back = read_hf_model(dir);
  EXPECT_EQ(back.config.arch, Arch::qwen2);
  EXPECT_EQ(back.config.rope_theta, 1000000.0);
  EXPECT_EQ(back.config.rms_norm_eps, 1e-6);
  test::expect_same_model(m, back);
}

TEST(HfModel, TiedClassifierIsStoredOnceUntiedTwice) {
  SCOPED_TRACE(test::seed_trace());
  const std::string root = test::scratch_dir("hf_tied");
  for (bool tied : {true, false}) {
    ModelConfig c = synthetic_shape("tiny-mqa");
    c.tied_classifier = tied;
    const Model m = make_synthetic_model(c, test::test_seed());
    const std::string dir = root + (tied ? "/tied" : "/untied");
    write_hf_model(dir, m, FloatFormat::f32);
    EXPECT_EQ(read_safetensors(dir + "/" + kHfWeightsFile).has("lm_head.weight"), !tied);
    const Model back = read_hf_model(dir);
    EXPECT_EQ(back.config.tied_classifier, tied);
    test::expect_same_model(m, back);
  }
}

TEST(HfModel, ConfigReadsWithoutWeightsAndAppliesDefaults) {
  const std::string dir = test::scratch_dir("hf_config_only");
  // A minimal config: transformers' defaults fill what is omitted.
  test::write_bytes(dir + "/config.json", R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 256,
      "intermediate_size": 688, "num_hidden_layers": 3, "num_attention_heads": 8, "vocab_size": 1000})");
  const ModelConfig c = read_hf_config(dir);
  EXPECT_EQ(c.n_kv_heads, 8);
  EXPECT_EQ(c.head_dim, 32);
  EXPECT_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.max_seq, 2048);
  EXPECT_FALSE(c.tied_classifier);
  EXPECT_EQ(c.rope, RopeStyle::rotate_half);
  EXPECT_THROW(read_hf_model(dir), InputError);  // no model.safetensors
}

// Llama 3.x's rope_scaling as its published config.json writes it (Llama-3.1-8B's values;
// the older key "type" names the type too), and back through the writer.
TEST(HfModel, Llama3RopeScalingIsReadAndWritten) {
  const std::string dir = test::scratch_dir("hf_llama3");
  for (const char* type_key : {"rope_type", "type"}) {
    test::write_bytes(dir + "/config.json", std::string(R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 256,
        "intermediate_size": 688, "num_hidden_layers": 3, "num_attention_heads": 8, "vocab_size": 1000,
        "rope_theta": 500000.0, "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192, ")") + type_key + R"(": "llama3"}})");
    const ModelConfig c = read_hf_config(dir);
    EXPECT_EQ(c.rope_scaling, (RopeScaling{8, 1, 4, 8192})) << type_key;
  }
  const Model m = make_synthetic_model(synthetic_shape("tiny-llama3"), test::test_seed());
  ASSERT_TRUE(m.config.rope_scaling.active());
  write_hf_model(dir + "/model", m, FloatFormat::f32);
  const Model back = read_hf_model(dir + "/model");
  EXPECT_EQ(back.config.rope_scaling, m.config.rope_scaling);
  test::expect_same_model(m, back);
  // "default" is plain RoPE, as transformers reads it.
  test::write_bytes(dir + "/config.json", R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 256,
      "intermediate_size": 688, "num_hidden_layers": 3, "num_attention_heads": 8, "vocab_size": 1000,
      "rope_scaling": {"rope_type": "default"}})");
  EXPECT_FALSE(read_hf_config(dir).rope_scaling.active());
}

// Qwen3: its published config.json (Qwen3-0.6B's fields) and the q/k norm tensors, both ways.
TEST(HfModel, Qwen3ConfigAndQkNormsAreReadAndWritten) {
  const std::string dir = test::scratch_dir("hf_qwen3");
  test::write_bytes(dir + "/config.json", R"({"architectures": ["Qwen3ForCausalLM"], "attention_bias": false,
      "head_dim": 128, "hidden_act": "silu", "hidden_size": 1024, "intermediate_size": 3072,
      "max_position_embeddings": 40960, "model_type": "qwen3", "num_attention_heads": 16,
      "num_hidden_layers": 28, "num_key_value_heads": 8, "rms_norm_eps": 1e-06, "rope_scaling": null,
      "rope_theta": 1000000, "sliding_window": null, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
      "use_sliding_window": false, "vocab_size": 151936})");
  const ModelConfig c = read_hf_config(dir);
  EXPECT_EQ(c.arch, Arch::qwen3);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.q_dim(), 2048);  // wider than hidden_size
  EXPECT_EQ(c.parameter_count(), synthetic_shape("qwen3-0.6b").parameter_count());
  const Model m = make_synthetic_model(synthetic_shape("tiny-qwen3"), test::test_seed());
  ASSERT_EQ(m.layers[0].q_norm.size(), 32u);
  write_hf_model(dir + "/model", m, FloatFormat::f32);
  const SafetensorsFile st = read_safetensors(dir + "/model/" + kHfWeightsFile);
  EXPECT_EQ(st.get("model.layers.1.self_attn.k_norm.weight").shape, (std::vector<std::int64_t>{32}));
  const Model back = read_hf_model(dir + "/model");
  EXPECT_TRUE(back.config.qk_norm);
  EXPECT_EQ(back.layers[1].q_norm, m.layers[1].q_norm);
  EXPECT_EQ(back.layers[1].k_norm, m.layers[1].k_norm);
  test::expect_same_model(m, back);
}

// Gemma 2: google/gemma-2-2b's published config.json (no tie_word_embeddings: Gemma2Config
// ties by default), the derived embed scale, the window on even layers, the caps; the
// four norms of a block, both ways; what kvfid does not implement, refused by name.
TEST(HfModel, Gemma2ConfigAndItsFourNormsAreReadAndWritten) {
  const std::string dir = test::scratch_dir("hf_gemma2");
  const std::string published = R"({"architectures": ["Gemma2ForCausalLM"], "attention_bias": false,
      "attention_dropout": 0.0, "attn_logit_softcapping": 50.0, "bos_token_id": 2, "cache_implementation": "hybrid",
      "eos_token_id": 1, "final_logit_softcapping": 30.0, "head_dim": 256, "hidden_act": "gelu_pytorch_tanh",
      "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 2304, "initializer_range": 0.02,
      "intermediate_size": 9216, "max_position_embeddings": 8192, "model_type": "gemma2",
      "num_attention_heads": 8, "num_hidden_layers": 26, "num_key_value_heads": 4, "pad_token_id": 0,
      "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-06, "rope_theta": 10000.0, "sliding_window": 4096,
      "torch_dtype": "float32", "use_cache": true, "vocab_size": 256000)";
  test::write_bytes(dir + "/config.json", published + "}");
  ModelConfig c = read_hf_config(dir);
  EXPECT_EQ(c.arch, Arch::gemma2);
  EXPECT_TRUE(c.tied_classifier);
  EXPECT_EQ(c.embed_scale, 48.0);  // sqrt(2304), exact
  EXPECT_TRUE(c.norm_unit_offset);
  EXPECT_TRUE(c.sandwich_norms);
  EXPECT_EQ(c.activation, Activation::gelu_tanh);
  EXPECT_EQ(c.score_scale_dim(), 256.0);
  EXPECT_EQ(c.attn_softcap, 50.0);
  EXPECT_EQ(c.final_softcap, 30.0);
  EXPECT_EQ(c.window_of(0), 4096);
  EXPECT_EQ(c.window_of(1), 0);
  EXPECT_EQ(c.window_of(24), 4096);
  EXPECT_EQ(c.q_dim(), 2048);  // narrower than hidden_size
  EXPECT_EQ(c.parameter_count(), synthetic_shape("gemma-2-2b").parameter_count());
  EXPECT_EQ(to_json(c), to_json(synthetic_shape("gemma-2-2b")));
  // gemma-2-9b's width: sqrt(3584) = 59.87 is 59.75 in bfloat16, as HF's normalizer tensor.
  test::write_bytes(dir + "/config.json", R"({"architectures": ["Gemma2ForCausalLM"], "hidden_size": 3584,
      "intermediate_size": 14336, "num_hidden_layers": 42, "num_attention_heads": 16, "num_key_value_heads": 8,
      "vocab_size": 256000, "attn_logit_softcapping": null, "final_logit_softcapping": null,
      "layer_types": ["sliding_attention", "full_attention", "sliding_attention", "full_attention"]})");
  EXPECT_THROW(read_hf_config(dir), InputError);  // four layer types for 42 layers
  test::write_bytes(dir + "/config.json", R"({"architectures": ["Gemma2ForCausalLM"], "hidden_size": 3584,
      "intermediate_size": 14336, "num_hidden_layers": 2, "num_attention_heads": 16, "num_key_value_heads": 8,
      "vocab_size": 256000, "attn_logit_softcapping": null, "final_logit_softcapping": null,
      "layer_types": ["sliding_attention", "full_attention"]})");
  c = read_hf_config(dir);
  EXPECT_EQ(c.embed_scale, 59.75);
  EXPECT_EQ(c.attn_softcap, 0.0);  // null: no capping
  EXPECT_EQ(c.final_softcap, 0.0);
  EXPECT_EQ(c.head_dim, 256);  // Gemma2Config's default
  EXPECT_EQ(c.score_scale_dim(), 256.0);
  for (const std::string& bad : {std::string(R"("layer_types": ["full_attention", "sliding_attention"])"),
                                 std::string(R"("hidden_activation": "gelu")"),
                                 std::string(R"("hidden_act": "silu")")}) {
    test::write_bytes(dir + "/config.json", published + ", " + bad + "}");
    try {
      read_hf_config(dir);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(bad.substr(1, bad.find('"', 1) - 1)), std::string::npos) << e.what();
    }
  }
  const Model m = make_synthetic_model(synthetic_shape("tiny-gemma2"), test::test_seed());
  ASSERT_EQ(m.layers[1].post_ffn_norm.size(), 72u);
  write_hf_model(dir + "/model", m, FloatFormat::f32);
  const SafetensorsFile st = read_safetensors(dir + "/model/" + kHfWeightsFile);
  EXPECT_EQ(st.get("model.layers.1.pre_feedforward_layernorm.weight").shape, (std::vector<std::int64_t>{72}));
  const Model back = read_hf_model(dir + "/model");
  EXPECT_EQ(to_json(back.config), to_json(m.config));
  EXPECT_EQ(back.layers[0].post_attn_norm, m.layers[0].post_attn_norm);
  EXPECT_EQ(back.layers[0].ffn_norm, m.layers[0].ffn_norm);
  test::expect_same_model(m, back);
  // Gemma's features on another family (or some of them on Gemma) have no HF spelling.
  Model odd = m;
  odd.config.arch = Arch::llama;
  EXPECT_THROW(write_hf_model(dir + "/odd", odd, FloatFormat::f32), std::invalid_argument);
  odd = m;
  odd.config.embed_scale = 8.0;
  EXPECT_THROW(write_hf_model(dir + "/odd", odd, FloatFormat::f32), std::invalid_argument);
  EXPECT_FALSE(fs::exists(dir + "/odd"));
}

// DeepSeek-V2's latent attention as its config.json spells it (DeepSeek-V2-Lite's
// attention: no low-rank query, a latent of 512, heads of 128 + 64 and values of 128),
// and tiny-mla (a low-rank query) written and read back tensor for tensor.
TEST(HfModel, DeepseekLatentAttentionIsReadAndWritten) {
  const std::string dir = test::scratch_dir("hf_deepseek");
  const std::string base = R"({"architectures": ["DeepseekV2ForCausalLM"], "hidden_size": 2048,
      "intermediate_size": 10944, "num_hidden_layers": 27, "num_attention_heads": 16, "num_key_value_heads": 16,
      "vocab_size": 102400, "kv_lora_rank": 512, "q_lora_rank": null, "qk_nope_head_dim": 128,
      "qk_rope_head_dim": 64, "v_head_dim": 128, "rms_norm_eps": 1e-06, "tie_word_embeddings": false, )";
  test::write_bytes(dir + "/config.json", base + R"("n_routed_experts": null})");
  const ModelConfig c = read_hf_config(dir);
  EXPECT_EQ(c.arch, Arch::deepseek2);
  EXPECT_EQ(c.head_dim, 192);
  EXPECT_EQ(c.n_kv_heads, 16);
  EXPECT_EQ(c.v_head_dim(), 128);
  EXPECT_EQ(c.attn_out_dim(), 2048);
  EXPECT_EQ(c.mla.q_lora_rank, 0);
  EXPECT_EQ(c.q_in_dim(), 2048);
  EXPECT_EQ(c.rope, RopeStyle::interleaved);
  EXPECT_EQ(c.rope_head_dim(), 64);
  EXPECT_EQ(c.cache_values_per_token(), 576);  // 512 + 64: the cache DeepSeek-V2 holds, against 16 x (192 + 128)
  // Per layer: norms 2 x 2048, wq 3072 x 2048, wkv_a 576 x 2048 + its norm 512, wkv_b
  // 16 (128 + 128) x 512, wo 2048 x 2048, three FFN matrices 3 x 2048 x 10944; then the
  // embedding, the head and the final norm.
  const std::int64_t layer = 2 * 2048 + 3072LL * 2048 + 576LL * 2048 + 512 + 4096LL * 512 + 2048LL * 2048 + 3LL * 2048 * 10944;
  EXPECT_EQ(c.parameter_count(), 27 * layer + 2 * 102400LL * 2048 + 2048);
  // What kvfid does not run is refused by name: routed experts (Lite's own), yarn RoPE
  // (Lite's own), an unstated V3 (256 experts by default), a sliding window.
  for (const std::string& bad : {std::string(R"("n_routed_experts": 64, "first_k_dense_replace": 1})"),
                                 std::string(R"("rope_scaling": {"type": "yarn", "factor": 40}})"),
                                 std::string(R"("use_sliding_window": true})")}) {
    SCOPED_TRACE(bad);
    test::write_bytes(dir + "/config.json", base + bad);
    EXPECT_THROW(read_hf_config(dir), InputError);
  }
  test::write_bytes(dir + "/config.json", base + R"("n_routed_experts": 64, "first_k_dense_replace": 27})");
  EXPECT_EQ(read_hf_config(dir).mla.kv_lora_rank, 512);  // every layer dense: no expert runs
  std::string v3 = base;
  v3.replace(v3.find("DeepseekV2"), 10, "DeepseekV3");
  test::write_bytes(dir + "/config.json", v3 + R"("first_k_dense_replace": 1})");
  EXPECT_THROW(read_hf_config(dir), InputError);
  test::write_bytes(dir + "/config.json", v3 + R"("n_routed_experts": null, "rope_interleave": false})");
  EXPECT_EQ(read_hf_config(dir).rope, RopeStyle::rotate_half);

  const Model m = make_synthetic_model(synthetic_shape("tiny-mla"), test::test_seed());
  ASSERT_EQ(m.layers[1].wkv_b.rows, 4 * (16 + 16));
  write_hf_model(dir + "/model", m, FloatFormat::f32);
  const SafetensorsFile st = read_safetensors(dir + "/model/" + kHfWeightsFile);
  EXPECT_EQ(st.get("model.layers.1.self_attn.kv_a_proj_with_mqa.weight").shape, (std::vector<std::int64_t>{40, 64}));
  EXPECT_EQ(st.get("model.layers.0.self_attn.q_b_proj.weight").shape, (std::vector<std::int64_t>{96, 24}));
  EXPECT_EQ(st.get("model.layers.0.self_attn.o_proj.weight").shape, (std::vector<std::int64_t>{64, 64}));
  test::expect_same_model(m, read_hf_model(dir + "/model"));
  ModelConfig full_rank = m.config;  // DeepSeek-V2-Lite's form: q_proj instead of q_a/q_b
  full_rank.mla.q_lora_rank = 0;
  const Model lite = make_synthetic_model(full_rank, test::test_seed());
  write_hf_model(dir + "/lite", lite, FloatFormat::f32);
  EXPECT_TRUE(read_safetensors(dir + "/lite/" + kHfWeightsFile).has("model.layers.0.self_attn.q_proj.weight"));
  test::expect_same_model(lite, read_hf_model(dir + "/lite"));
}

// Sliding windows as Mistral and Qwen2 write them, read and written back.
TEST(HfModel, SlidingWindowsAreReadAndWritten) {
  const std::string dir = test::scratch_dir("hf_window");
  const std::string base = R"("hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 3,
      "num_attention_heads": 8, "num_key_value_heads": 2, "vocab_size": 1000, )";
  test::write_bytes(dir + "/config.json", R"({"architectures": ["MistralForCausalLM"], )" + base + R"("sliding_window": 4096})");
  ModelConfig c = read_hf_config(dir);
  EXPECT_EQ(c.arch, Arch::mistral);
  EXPECT_EQ(c.sliding_window, 4096);
  EXPECT_EQ(c.window_of(0), 4096);
  EXPECT_EQ(c.first_key(0, 5000), 905);
  EXPECT_EQ(c.max_seq, 131072);  // transformers' MistralConfig default
  test::write_bytes(dir + "/config.json", R"({"architectures": ["MistralForCausalLM"], )" + base + R"("sliding_window": null})");
  EXPECT_EQ(read_hf_config(dir).sliding_window, 0);
  test::write_bytes(dir + "/config.json", R"({"architectures": ["Qwen2ForCausalLM"], )" + base +
                                              R"("use_sliding_window": true, "sliding_window": 64, "max_window_layers": 2})");
  c = read_hf_config(dir);
  EXPECT_EQ(c.window_of(1), 0);
  EXPECT_EQ(c.window_of(2), 64);
  EXPECT_EQ(c.first_key(2, 10), 0);
  // Qwen2's window is off unless use_sliding_window says otherwise (its sliding_window is set anyway).
  test::write_bytes(dir + "/config.json", R"({"architectures": ["Qwen2ForCausalLM"], )" + base + R"("sliding_window": 64})");
  EXPECT_EQ(read_hf_config(dir).sliding_window, 0);
  test::write_bytes(dir + "/config.json", R"({"architectures": ["LlamaForCausalLM"], )" + base + R"("use_sliding_window": true})");
  EXPECT_THROW(read_hf_config(dir), InputError);
  for (const char* shape : {"tiny-mistral", "tiny-qwen2"}) {
    ModelConfig s = synthetic_shape(shape);
    if (s.arch == Arch::qwen2) s.sliding_window = 5, s.full_attention_layers = 1;
    const Model m = make_synthetic_model(s, test::test_seed());
    write_hf_model(dir + "/" + shape, m, FloatFormat::f32);
    const ModelConfig back = read_hf_config(dir + "/" + shape);
    EXPECT_EQ(back.sliding_window, s.sliding_window) << shape;
    EXPECT_EQ(back.full_attention_layers, s.full_attention_layers) << shape;
  }
}

TEST(HfModel, WriterRefusesInterleavedRope) {
  ModelConfig c = synthetic_shape("tiny-llama");
  c.rope = RopeStyle::interleaved;
  const Model m = make_synthetic_model(c, test::test_seed());
  const std::string dir = test::scratch_dir("hf_interleaved") + "/out";
  EXPECT_THROW(write_hf_model(dir, m, FloatFormat::f32), std::invalid_argument);
  EXPECT_FALSE(fs::exists(dir));
}

TEST(HfModel, WriterRefusesLossyStorageNamingTheTensor) {
  SCOPED_TRACE(test::seed_trace());
  const Model m = make_synthetic_model(synthetic_shape("tiny-llama"), test::test_seed());  // f32 values
  const std::string parent = test::scratch_dir("hf_lossy");
  for (FloatFormat narrow : {FloatFormat::f16, FloatFormat::bf16}) {
    const std::string dir = parent + "/" + to_string(narrow);
    try {
      write_hf_model(dir, m, narrow);
      ADD_FAILURE() << "f32 weights were written as " << to_string(narrow);
    } catch (const NotRepresentableError& e) {
      EXPECT_NE(e.problem().find("tensor 'model.embed_tokens.weight'"), std::string::npos) << e.what();
      EXPECT_NE(e.problem().find("not exactly representable"), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).find("--"), std::string::npos) << "a library error names a flag: " << e.what();
    }
    EXPECT_FALSE(fs::exists(dir));
  }
  EXPECT_TRUE(fs::is_empty(parent));  // no staging folder left behind
}

}  // namespace
}  // namespace kvfid::ref
