#include "reference/io/hf.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <iterator>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "reference/formats/minifloat.h"
#include "reference/io/atomic_file.h"
#include "reference/util/input_error.h"
#include "reference/io/json_input.h"
#include "reference/io/safetensors.h"
#include "reference/io/weight_checks.h"
#include "reference/util/brief_text.h"

namespace kvfid::ref {

namespace {
namespace fs = std::filesystem;
using Shape = std::vector<std::int64_t>;

// transformers' defaults for fields a config.json may omit (LlamaConfig, Qwen2Config).
constexpr double kHfDefaultRmsEps = 1e-6;
constexpr double kHfDefaultRopeTheta = 10000.0;
constexpr int kLlamaDefaultMaxPositions = 2048;
// transformers' Qwen2Config default for max_window_layers (the layers below it attend fully).
constexpr int kQwen2DefaultMaxWindowLayers = 28;
constexpr int kMistralDefaultMaxPositions = 4096 * 32;  // transformers' MistralConfig
constexpr int kQwen2DefaultMaxPositions = 32768;
// transformers' Gemma2Config defaults (fields a Gemma 2 config.json may omit).
constexpr int kGemma2DefaultHeadDim = 256;
constexpr double kGemma2DefaultQueryPreAttnScalar = 256;
constexpr double kGemma2DefaultAttnSoftcap = 50.0;
constexpr double kGemma2DefaultFinalSoftcap = 30.0;
constexpr int kGemma2DefaultSlidingWindow = 4096;
constexpr int kGemma2DefaultMaxPositions = 8192;
// transformers' DeepseekV2Config defaults (DeepseekV3Config's where they differ: its
// n_routed_experts 256 and first_k_dense_replace 3 make an unstated V3 a mixture of
// experts, refused below).
constexpr int kDeepseekDefaultQLoraRank = 1536;
constexpr int kDeepseekDefaultKvLoraRank = 512;
constexpr int kDeepseekDefaultRopeDim = 64;
constexpr int kDeepseekDefaultNopeDim = 128;
constexpr int kDeepseekDefaultVHeadDim = 128;
constexpr int kDeepseekV2DefaultMaxPositions = 2048;
constexpr int kDeepseekV3DefaultMaxPositions = 4096;
constexpr int kDeepseekV3DefaultRoutedExperts = 256;
constexpr int kDeepseekV3DefaultDenseLayers = 3;

std::string join(const std::string& dir, const char* file) { return (fs::path(dir) / file).string(); }

std::string shape_text(const Shape& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

class ConfigReader {
 public:
  ConfigReader(const nlohmann::json& j, const std::string& path) : j_(j), path_(path) {}

  int positive_int(const char* key) const {
    if (!j_.contains(key)) throw InputError(path_, std::string("missing field \"") + key + "\"");
    return positive_int_value(key);
  }
  double positive_number(const char* key) const {
    if (!j_.contains(key) || j_[key].is_null()) throw InputError(path_, std::string("missing field \"") + key + "\"");
    return positive_number_or(key, 0);
  }
  int non_negative_int_or(const char* key, int fallback) const {
    if (!j_.contains(key) || j_[key].is_null()) return fallback;
    const auto& v = j_[key];
    if (!v.is_number_integer() || v.get<long long>() < 0 || v.get<long long>() > std::numeric_limits<int>::max())
      throw InputError(path_, std::string("field \"") + key + "\" must be a non-negative integer, got " + brief_json(v));
    return int(v.get<long long>());
  }
  int positive_int_or(const char* key, int fallback) const {
    return j_.contains(key) && !j_[key].is_null() ? positive_int_value(key) : fallback;
  }
  double positive_number_or(const char* key, double fallback) const {
    if (!j_.contains(key) || j_[key].is_null()) return fallback;
    if (!j_[key].is_number() || !(j_[key].get<double>() > 0))
      throw InputError(path_, std::string("field \"") + key + "\" must be a positive number, got " + brief_json(j_[key]));
    return j_[key].get<double>();
  }
  // A positive number, or 0 when the field is null (a feature switched off).
  double number_or_null(const char* key, double fallback) const {
    if (j_.contains(key) && j_[key].is_null()) return 0;
    return positive_number_or(key, fallback);
  }
  bool boolean_or(const char* key, bool fallback) const {
    if (!j_.contains(key) || j_[key].is_null()) return fallback;
    if (!j_[key].is_boolean())
      throw InputError(path_, std::string("field \"") + key + "\" must be true or false, got " + brief_json(j_[key]));
    return j_[key].get<bool>();
  }
  // Features kvfid does not model: present and not at their neutral value, they are
  // refused rather than silently ignored.
  void refuse_unless(const char* key, const nlohmann::json& neutral, const char* why) const {
    if (j_.contains(key) && !j_[key].is_null() && j_[key] != neutral)
      throw InputError(path_, std::string("field \"") + key + "\" = " + brief_json(j_[key]) + " is not supported (" + why + ")");
  }

 private:
  int positive_int_value(const char* key) const {
    const auto& v = j_[key];
    if (!v.is_number_integer() || v.get<long long>() <= 0 || v.get<long long>() > std::numeric_limits<int>::max())
      throw InputError(path_, std::string("field \"") + key + "\" must be a positive integer, got " + brief_json(v));
    return int(v.get<long long>());
  }
  const nlohmann::json& j_;
  const std::string& path_;
};

// rope_scaling: absent, null or rope_type "default" is plain RoPE; "llama3" is Llama 3.x
// scaling (its four fields required); every other type is refused by name. The older
// configs name the type "type".
RopeScaling read_rope_scaling(const nlohmann::json& j, const std::string& path) {
  if (!j.contains("rope_scaling") || j["rope_scaling"].is_null()) return {};
  const nlohmann::json& s = j["rope_scaling"];
  if (!s.is_object()) throw InputError(path, "field \"rope_scaling\" must be an object, got " + brief_json(s));
  const char* key = s.contains("rope_type") ? "rope_type" : "type";
  if (!s.contains(key) || !s[key].is_string())
    throw InputError(path, "field \"rope_scaling\" has no \"rope_type\" naming the scaling");
  const std::string type = s[key].get<std::string>();
  if (type == "default") return {};
  if (type != "llama3")
    throw InputError(path, "rope_scaling type '" + brief_text(type) + "' is not supported (kvfid implements llama3)");
  const ConfigReader r(s, path);
  return RopeScaling{r.positive_number("factor"), r.positive_number("low_freq_factor"),
                     r.positive_number("high_freq_factor"), r.positive_int("original_max_position_embeddings")};
}

// HF names of one layer's tensors, with the LayerWeights member each fills.
struct LayerTensor {
  const char* suffix;
  Matrix LayerWeights::*matrix;
  std::vector<double> LayerWeights::*vector;
};
constexpr LayerTensor kLayerTensors[] = {
    {"input_layernorm.weight", nullptr, &LayerWeights::attn_norm},
    {"self_attn.q_proj.weight", &LayerWeights::wq, nullptr},
    {"self_attn.k_proj.weight", &LayerWeights::wk, nullptr},
    {"self_attn.v_proj.weight", &LayerWeights::wv, nullptr},
    {"self_attn.o_proj.weight", &LayerWeights::wo, nullptr},
    {"post_attention_layernorm.weight", nullptr, &LayerWeights::ffn_norm},
    {"mlp.gate_proj.weight", &LayerWeights::w1, nullptr},
    {"mlp.up_proj.weight", &LayerWeights::w3, nullptr},
    {"mlp.down_proj.weight", &LayerWeights::w2, nullptr},
};
// Gemma 2's block: four norms, post_attention_layernorm being the attention output's.
constexpr LayerTensor kGemma2LayerTensors[] = {
    {"input_layernorm.weight", nullptr, &LayerWeights::attn_norm},
    {"self_attn.q_proj.weight", &LayerWeights::wq, nullptr},
    {"self_attn.k_proj.weight", &LayerWeights::wk, nullptr},
    {"self_attn.v_proj.weight", &LayerWeights::wv, nullptr},
    {"self_attn.o_proj.weight", &LayerWeights::wo, nullptr},
    {"post_attention_layernorm.weight", nullptr, &LayerWeights::post_attn_norm},
    {"pre_feedforward_layernorm.weight", nullptr, &LayerWeights::ffn_norm},
    {"mlp.gate_proj.weight", &LayerWeights::w1, nullptr},
    {"mlp.up_proj.weight", &LayerWeights::w3, nullptr},
    {"mlp.down_proj.weight", &LayerWeights::w2, nullptr},
    {"post_feedforward_layernorm.weight", nullptr, &LayerWeights::post_ffn_norm},
};
// DeepSeek-V2's block: input_layernorm, the query (full-rank, or low-rank with its own
// norm), the latent's projections, then Llama's o_proj and FFN (kLlamaAfterQkv).
constexpr LayerTensor kMlaQueryTensors[] = {{"self_attn.q_proj.weight", &LayerWeights::wq, nullptr}};
constexpr LayerTensor kMlaLowRankQueryTensors[] = {
    {"self_attn.q_a_proj.weight", &LayerWeights::wq_a, nullptr},
    {"self_attn.q_a_layernorm.weight", nullptr, &LayerWeights::q_a_norm},
    {"self_attn.q_b_proj.weight", &LayerWeights::wq, nullptr},
};
constexpr LayerTensor kMlaLatentTensors[] = {
    {"self_attn.kv_a_proj_with_mqa.weight", &LayerWeights::wkv_a, nullptr},
    {"self_attn.kv_a_layernorm.weight", nullptr, &LayerWeights::kv_a_norm},
    {"self_attn.kv_b_proj.weight", &LayerWeights::wkv_b, nullptr},
};
// Where Llama's block goes on past its q, k and v: o_proj, then the FFN (DeepSeek's too).
constexpr std::size_t kLlamaAfterQkv = 4;
static_assert(std::string_view(kLayerTensors[kLlamaAfterQkv].suffix) == "self_attn.o_proj.weight");

constexpr LayerTensor kQkNormTensors[] = {
    {"self_attn.q_norm.weight", nullptr, &LayerWeights::q_norm},
    {"self_attn.k_norm.weight", nullptr, &LayerWeights::k_norm},
};
constexpr LayerTensor kBiasTensors[] = {
    {"self_attn.q_proj.bias", nullptr, &LayerWeights::bq},
    {"self_attn.k_proj.bias", nullptr, &LayerWeights::bk},
    {"self_attn.v_proj.bias", nullptr, &LayerWeights::bv},
};

// The block's tensors of the model's family, in the order the writers write them.
std::vector<LayerTensor> layer_tensors(const ModelConfig& c) {
  if (c.sandwich_norms) return {std::begin(kGemma2LayerTensors), std::end(kGemma2LayerTensors)};
  if (!c.mla.active()) return {std::begin(kLayerTensors), std::end(kLayerTensors)};
  std::vector<LayerTensor> t = {kLayerTensors[0]};  // input_layernorm
  const std::span<const LayerTensor> query =
      c.mla.q_lora_rank > 0 ? std::span<const LayerTensor>(kMlaLowRankQueryTensors) : kMlaQueryTensors;
  t.insert(t.end(), query.begin(), query.end());
  t.insert(t.end(), std::begin(kMlaLatentTensors), std::end(kMlaLatentTensors));
  t.insert(t.end(), std::begin(kLayerTensors) + kLlamaAfterQkv, std::end(kLayerTensors));
  return t;
}

std::string layer_name(int l, const char* suffix) { return "model.layers." + std::to_string(l) + "." + suffix; }

// The shape config.json implies for a layer tensor.
Shape layer_shape(const ModelConfig& c, const std::string& suffix) {
  const std::int64_t d = c.dim, q = c.q_dim(), kv = c.kv_dim(), hid = c.hidden;
  if (suffix == "input_layernorm.weight" || suffix == "post_attention_layernorm.weight" ||
      suffix == "pre_feedforward_layernorm.weight" || suffix == "post_feedforward_layernorm.weight")
    return {d};
  const LatentAttention& a = c.mla;
  if (suffix == "self_attn.q_proj.weight") return {q, d};
  if (suffix == "self_attn.k_proj.weight" || suffix == "self_attn.v_proj.weight") return {kv, d};
  if (suffix == "self_attn.o_proj.weight") return {d, c.attn_out_dim()};
  if (suffix == "self_attn.q_a_proj.weight") return {a.q_lora_rank, d};
  if (suffix == "self_attn.q_a_layernorm.weight") return {a.q_lora_rank};
  if (suffix == "self_attn.q_b_proj.weight") return {q, a.q_lora_rank};
  if (suffix == "self_attn.kv_a_proj_with_mqa.weight") return {a.kv_lora_rank + a.rope_dim, d};
  if (suffix == "self_attn.kv_a_layernorm.weight") return {a.kv_lora_rank};
  if (suffix == "self_attn.kv_b_proj.weight") return {std::int64_t(c.n_heads) * (c.nope_dim() + a.v_head_dim), a.kv_lora_rank};
  if (suffix == "mlp.gate_proj.weight" || suffix == "mlp.up_proj.weight") return {hid, d};
  if (suffix == "mlp.down_proj.weight") return {d, hid};
  if (suffix == "self_attn.q_norm.weight" || suffix == "self_attn.k_norm.weight") return {c.head_dim};
  if (suffix == "self_attn.q_proj.bias") return {q};
  if (suffix == "self_attn.k_proj.bias" || suffix == "self_attn.v_proj.bias") return {kv};
  throw std::logic_error("no shape for " + suffix);
}

// Tensors are read in place from the mapped file: matrices become views of it,
// vectors (norm weights, biases) small float64 copies.
class TensorReader {
 public:
  explicit TensorReader(const std::string& path) : file_(map_safetensors(path)) {}

  std::vector<double> values(const std::string& name, const Shape& expected) {
    std::vector<double> v = tensor_values(checked(name, expected), file_.path);
    check_finite(v, file_.path, name);
    return v;
  }
  Matrix matrix(const std::string& name, int rows, int cols) {
    const TensorView& t = checked(name, {rows, cols});
    Matrix m = Matrix::view(rows, cols, weight_dtype(t.dtype).value(), t.data, file_.mapping);
    check_finite(m, file_.path, name);
    return m;
  }
  bool has(const std::string& name) const { return file_.has(name); }
  // A tensor kvfid would not use (an o_proj bias, say) means a model it cannot run.
  void refuse_unused() const {
    for (const auto& [name, t] : file_.tensors)
      if (!used_.count(name))
        throw InputError(file_.path, "unexpected tensor '" + brief_text(name) + "' (not part of a " +
                                         "model as config.json describes it)");
  }
  const std::string& path() const { return file_.path; }

 private:
  const TensorView& checked(const std::string& name, const Shape& expected) {
    const TensorView& t = file_.get(name);
    if (t.dtype != DType::F32 && t.dtype != DType::F16 && t.dtype != DType::BF16)
      throw InputError(file_.path, "tensor '" + name + "' has dtype " + dtype_name(t.dtype) +
                                       "; kvfid reads F32, F16 and BF16 weights");
    if (t.shape != expected)
      throw InputError(file_.path, "tensor '" + name + "' has shape " + shape_text(t.shape) + " but config.json implies " +
                                       shape_text(expected));
    used_.insert(name);
    return t;
  }
  MappedSafetensors file_;
  std::set<std::string> used_;
};

// Storage checks for the writer: `rows` rows of `cols` values, row r produced by
// row(r, out) ([cols] doubles), encoded one row at a time (a matrix is never decoded
// whole).
template <class RowFn>
Tensor encode(const std::string& name, Shape shape, std::int64_t rows, std::int64_t cols, RowFn row,
              FloatFormat storage, const std::string& dir) {
  Tensor t;
  t.shape = std::move(shape);
  t.dtype = storage == FloatFormat::f32 ? DType::F32 : storage == FloatFormat::f16 ? DType::F16 : DType::BF16;
  const std::size_t width = dtype_size(t.dtype);
  t.bytes.resize(std::size_t(rows * cols) * width);
  std::vector<double> values(static_cast<std::size_t>(cols));  // [cols]
  for (std::int64_t r = 0; r < rows; ++r) {
    row(r, values.data());
    for (std::int64_t c = 0; c < cols; ++c) {
      const double v = values[std::size_t(c)];
      const std::size_t i = std::size_t(r * cols + c);
      if (round_to_format(v, storage) != v) {
        std::ostringstream text;
        text.precision(17);
        text << v;
        throw NotRepresentableError(dir, "tensor '" + name + "' element " + std::to_string(i) + " = " + text.str() +
                                             " is not exactly representable in " + to_string(storage));
      }
      std::uint8_t* out = t.bytes.data() + i * width;
      if (storage == FloatFormat::f32) {
        const float f = float(v);
        std::memcpy(out, &f, 4);
      } else {
        const std::uint16_t bits = storage == FloatFormat::f16 ? double_to_f16(v) : double_to_bf16(v);
        out[0] = std::uint8_t(bits & 0xff);
        out[1] = std::uint8_t(bits >> 8);
      }
    }
  }
  return t;
}

void require_shape(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("write_hf_model: " + what + " disagrees with the model's config");
}

const char* torch_dtype_name(FloatFormat f) {
  switch (f) {
    case FloatFormat::f32: return "float32";
    case FloatFormat::f16: return "float16";
    case FloatFormat::bf16: return "bfloat16";
  }
  return "float32";
}

// Gemma 2 (transformers' Gemma2 model): the embedding times sqrt(hidden_size) rounded to
// bfloat16 (the normalizer is a tensor in the weights' dtype, as the original JAX code);
// RMSNorm gains 1 + w; four norms a block; GeGLU; scores over sqrt(query_pre_attn_scalar),
// soft-capped, then the logits soft-capped; the window on even layers (layer_types, when
// given, must say so).
void read_gemma2(ModelConfig& c, const nlohmann::json& j, const ConfigReader& r, const std::string& path) {
  c.sliding_window = r.positive_int_or("sliding_window", kGemma2DefaultSlidingWindow);
  apply_gemma2(c, r.positive_number_or("query_pre_attn_scalar", kGemma2DefaultQueryPreAttnScalar),
               r.number_or_null("attn_logit_softcapping", kGemma2DefaultAttnSoftcap),
               r.number_or_null("final_logit_softcapping", kGemma2DefaultFinalSoftcap));
  if (j.contains("layer_types") && !j["layer_types"].is_null()) {
    const nlohmann::json& t = j["layer_types"];
    if (!t.is_array() || t.size() != std::size_t(c.n_layers))
      throw InputError(path, "field \"layer_types\" must list one type per layer (" + std::to_string(c.n_layers) + ")");
    for (std::size_t l = 0; l < t.size(); ++l)
      if (t[l] != (l % 2 == 0 ? "sliding_attention" : "full_attention"))
        throw InputError(path, "field \"layer_types\" gives layer " + std::to_string(l) + " " + brief_json(t[l]) +
                                   " (kvfid implements Gemma 2's pattern: sliding_attention on even layers, "
                                   "full_attention on odd)");
  }
}

// DeepSeek-V2/V3 (transformers' DeepseekV2/V3 models): latent attention over dense
// Llama-style layers. A mixture-of-experts layer is refused (every layer must come before
// first_k_dense_replace, or n_routed_experts be null), as is a rope_scaling other than
// llama3 (DeepSeek's own use yarn: read_rope_scaling names it). V3 configs may set
// rope_interleave false: rotate-half pairs on the rope part.
void read_deepseek(ModelConfig& c, const nlohmann::json& j, const ConfigReader& r, const std::string& path, bool v3) {
  LatentAttention a;
  a.q_lora_rank = j.contains("q_lora_rank") && j["q_lora_rank"].is_null() ? 0
                                                                           : r.positive_int_or("q_lora_rank", kDeepseekDefaultQLoraRank);
  a.kv_lora_rank = r.positive_int_or("kv_lora_rank", kDeepseekDefaultKvLoraRank);
  a.rope_dim = r.positive_int_or("qk_rope_head_dim", kDeepseekDefaultRopeDim);
  a.v_head_dim = r.positive_int_or("v_head_dim", kDeepseekDefaultVHeadDim);
  const int nope = r.positive_int_or("qk_nope_head_dim", kDeepseekDefaultNopeDim);
  const bool experts_null = j.contains("n_routed_experts") && j["n_routed_experts"].is_null();
  const int experts = experts_null ? 0 : r.positive_int_or("n_routed_experts", v3 ? kDeepseekV3DefaultRoutedExperts : 0);
  const int dense = r.non_negative_int_or("first_k_dense_replace", v3 ? kDeepseekV3DefaultDenseLayers : 0);
  if (experts > 0 && dense < c.n_layers)
    throw InputError(path, "mixture-of-experts layers are not supported (n_routed_experts " + std::to_string(experts) +
                               " from layer first_k_dense_replace " + std::to_string(dense) +
                               "); kvfid runs DeepSeek's latent attention over dense layers");
  apply_deepseek2(c, nope, a);
  if (v3 && !r.boolean_or("rope_interleave", true)) c.rope = RopeStyle::rotate_half;
}

}  // namespace

namespace {

void check_hf_rope(const ModelConfig& c, const std::string& writer) {
  // DeepSeek's checkpoints pair the rope part interleaved (DeepseekV2's modeling
  // de-interleaves at run time); every other HF family pairs rotate-half.
  if (c.arch == Arch::deepseek2 ? c.rope != RopeStyle::interleaved : c.rope != RopeStyle::rotate_half)
    throw std::invalid_argument(writer + ": HF folders pair RoPE rotate-half (DeepSeek's: interleaved); the model "
                                         "pairs it otherwise (permute_to_rotate_half turns an interleaved Llama)");
}

}  // namespace

void check_hf_expressible(const ModelConfig& c, const std::string& writer) {
  if (c.qkv_bias != (c.arch == Arch::qwen2))
    throw std::invalid_argument(writer + ": q/k/v bias goes with Qwen2 and only Qwen2 in HF folders");
  if (c.qk_norm != (c.arch == Arch::qwen3))
    throw std::invalid_argument(writer + ": q/k norms go with Qwen3 and only Qwen3 in HF folders");
  if (c.sliding_window > 0 && c.arch != Arch::qwen2 && !(c.arch == Arch::mistral && c.full_attention_layers == 0) &&
      c.arch != Arch::gemma2)
    throw std::invalid_argument(writer + ": HF folders express sliding windows as Qwen2's, Mistral's (every layer) "
                                         "or Gemma 2's");
  const bool gemma = c.arch == Arch::gemma2;
  ModelConfig as_gemma = c;  // Gemma 2's block over c's own scale and caps, as the reader makes it
  apply_gemma2(as_gemma, c.query_scale_dim, c.attn_softcap, c.final_softcap);
  const bool gemma_like = c.sliding_window > 0 && c.query_scale_dim > 0 && to_json(as_gemma) == to_json(c);
  const bool llama_like = !c.norm_unit_offset && !c.sandwich_norms && c.activation == Activation::silu &&
                          !c.alternating_window && c.query_scale_dim == 0 && c.attn_softcap == 0 &&
                          c.final_softcap == 0 && c.embed_scale == 1.0;
  if (gemma ? !gemma_like : !llama_like)
    throw std::invalid_argument(writer + ": Gemma 2's features go with Gemma 2, all of them, and only with it in HF folders");
}

ModelConfig read_hf_config(const std::string& dir) {
  const std::string path = join(dir, kHfConfigFile);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw InputError(dir, "not a folder");
  if (!fs::is_regular_file(path, ec)) throw InputError(path, "missing: a model folder needs config.json");
  const nlohmann::json j = parse_json_input(read_text_file(path), path, "this file");
  if (!j.is_object()) throw InputError(path, "not a JSON object");
  if (!j.contains("architectures") || !j["architectures"].is_array() || j["architectures"].empty() ||
      !j["architectures"][0].is_string())
    throw InputError(path, "missing field \"architectures\" (a list naming the model class)");

  ModelConfig c;
  const std::string arch = j["architectures"][0].get<std::string>();
  if (arch == "LlamaForCausalLM") {
    c.arch = Arch::llama;
  } else if (arch == "Qwen2ForCausalLM") {
    c.arch = Arch::qwen2;
  } else if (arch == "Qwen3ForCausalLM") {
    c.arch = Arch::qwen3;
  } else if (arch == "MistralForCausalLM") {
    c.arch = Arch::mistral;
  } else if (arch == "Gemma2ForCausalLM") {
    c.arch = Arch::gemma2;
  } else if (arch == "DeepseekV2ForCausalLM" || arch == "DeepseekV3ForCausalLM") {
    c.arch = Arch::deepseek2;
  } else {
    throw InputError(path, "unknown architecture '" + brief_text(arch) +
                               "' (expected LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, "
                               "Qwen3ForCausalLM, Gemma2ForCausalLM, DeepseekV2ForCausalLM or DeepseekV3ForCausalLM)");
  }
  const ConfigReader r(j, path);
  if (c.arch == Arch::gemma2) {  // Gemma2MLP reads hidden_activation; older configs also carry hidden_act
    r.refuse_unless("hidden_activation", "gelu_pytorch_tanh", "kvfid implements Gemma 2's GeGLU with tanh GELU");
    r.refuse_unless("hidden_act", "gelu_pytorch_tanh", "kvfid implements Gemma 2's GeGLU with tanh GELU");
  } else {
    r.refuse_unless("hidden_act", "silu", "kvfid implements SwiGLU with SiLU");
  }
  r.refuse_unless("attention_bias", false, "kvfid models q/k/v bias on Qwen2 only");
  r.refuse_unless("mlp_bias", false, "kvfid models no MLP bias");
  c.dim = r.positive_int("hidden_size");
  c.hidden = r.positive_int("intermediate_size");
  c.n_layers = r.positive_int("num_hidden_layers");
  c.n_heads = r.positive_int("num_attention_heads");
  c.n_kv_heads = r.positive_int_or("num_key_value_heads", c.n_heads);
  c.vocab = r.positive_int("vocab_size");
  // DeepSeek's heads are qk_nope_head_dim + qk_rope_head_dim (read_deepseek).
  if (c.arch != Arch::deepseek2 && (!j.contains("head_dim") || j["head_dim"].is_null()) && c.dim % c.n_heads != 0)
    throw InputError(path, "hidden_size " + std::to_string(c.dim) + " is not a multiple of num_attention_heads " +
                               std::to_string(c.n_heads) + " and no head_dim is given");
  c.head_dim = r.positive_int_or("head_dim", c.arch == Arch::gemma2 ? kGemma2DefaultHeadDim : c.dim / c.n_heads);
  const bool v3 = arch == "DeepseekV3ForCausalLM";
  c.max_seq = r.positive_int_or("max_position_embeddings",
                                c.arch == Arch::llama       ? kLlamaDefaultMaxPositions
                                : c.arch == Arch::mistral   ? kMistralDefaultMaxPositions
                                : c.arch == Arch::gemma2    ? kGemma2DefaultMaxPositions
                                : c.arch == Arch::deepseek2 ? (v3 ? kDeepseekV3DefaultMaxPositions : kDeepseekV2DefaultMaxPositions)
                                                            : kQwen2DefaultMaxPositions);
  c.rms_norm_eps = r.positive_number_or("rms_norm_eps", kHfDefaultRmsEps);
  c.rope_theta = r.positive_number_or("rope_theta", kHfDefaultRopeTheta);
  c.tied_classifier = r.boolean_or("tie_word_embeddings", c.arch == Arch::gemma2);  // Gemma2Config ties by default
  c.rope = RopeStyle::rotate_half;
  c.rope_scaling = read_rope_scaling(j, path);
  c.qkv_bias = c.arch == Arch::qwen2;
  c.qk_norm = c.arch == Arch::qwen3;
  // Sliding windows: Mistral's on every layer (null: none); Qwen2's when use_sliding_window,
  // on the layers from max_window_layers on. use_sliding_window on another family is refused.
  if (c.arch == Arch::mistral) {
    c.sliding_window = r.positive_int_or("sliding_window", 0);
  } else if (c.arch == Arch::gemma2) {
    read_gemma2(c, j, r, path);
  } else if (c.arch == Arch::deepseek2) {
    r.refuse_unless("use_sliding_window", false, "DeepSeek's attention has no sliding window");
    read_deepseek(c, j, r, path, v3);
  } else if (r.boolean_or("use_sliding_window", false)) {
    if (c.arch != Arch::qwen2)
      throw InputError(path, "field \"use_sliding_window\" = true is not supported on " + to_string(c.arch) +
                                 " (kvfid implements Qwen2's and Mistral's sliding windows)");
    c.sliding_window = r.positive_int("sliding_window");
    c.full_attention_layers = r.non_negative_int_or("max_window_layers", kQwen2DefaultMaxWindowLayers);
  }
  c.validate(path);
  return c;
}

std::optional<WeightType> weight_dtype(DType t) {
  switch (t) {
    case DType::F32: return WeightType::f32;
    case DType::F16: return WeightType::f16;
    case DType::BF16: return WeightType::bf16;
    default: return std::nullopt;
  }
}

Model read_hf_model(const std::string& dir) {
  Model m;
  m.config = read_hf_config(dir);
  const ModelConfig& c = m.config;
  const std::string weights = join(dir, kHfWeightsFile);
  std::error_code ec;
  if (!fs::is_regular_file(weights, ec)) {
    if (fs::exists(join(dir, "model.safetensors.index.json"), ec))
      throw InputError(weights, "missing; sharded checkpoints (model.safetensors.index.json) are not supported");
    throw InputError(weights, "missing: a model folder needs model.safetensors beside config.json");
  }
  TensorReader r(weights);
  m.source = dir;
  m.embedding = r.matrix("model.embed_tokens.weight", c.vocab, c.dim);
  for (int l = 0; l < c.n_layers; ++l) {
    LayerWeights w;
    for (const LayerTensor& t : layer_tensors(c)) {
      const Shape s = layer_shape(c, t.suffix);
      if (t.matrix) w.*t.matrix = r.matrix(layer_name(l, t.suffix), int(s[0]), int(s[1]));
      else w.*t.vector = r.values(layer_name(l, t.suffix), s);
    }
    if (c.qkv_bias)
      for (const LayerTensor& t : kBiasTensors) w.*t.vector = r.values(layer_name(l, t.suffix), layer_shape(c, t.suffix));
    if (c.qk_norm)
      for (const LayerTensor& t : kQkNormTensors) w.*t.vector = r.values(layer_name(l, t.suffix), layer_shape(c, t.suffix));
    m.layers.push_back(std::move(w));
  }
  m.final_norm = r.values("model.norm.weight", {c.dim});
  if (!c.tied_classifier) {
    m.classifier = r.matrix("lm_head.weight", c.vocab, c.dim);
  } else {
    m.classifier = m.embedding;  // the same view: a tied classifier is the embedding
    // Some exports store the tied head anyway; HF ignores it, so it must be the embedding.
    if (r.has("lm_head.weight") && !same_values(r.matrix("lm_head.weight", c.vocab, c.dim), m.embedding))
      throw InputError(r.path(), "tensor 'lm_head.weight' differs from the embedding but config.json ties them");
  }
  r.refuse_unused();
  return m;
}

std::string hf_config_json(const ModelConfig& c, FloatFormat storage) {
  check_hf_rope(c, "hf_config_json");
  const bool deepseek = c.arch == Arch::deepseek2;
  nlohmann::json j = {
      {"architectures", {c.arch == Arch::llama     ? "LlamaForCausalLM"
                         : c.arch == Arch::qwen2   ? "Qwen2ForCausalLM"
                         : c.arch == Arch::mistral ? "MistralForCausalLM"
                         : c.arch == Arch::gemma2  ? "Gemma2ForCausalLM"
                         : deepseek                ? "DeepseekV2ForCausalLM"
                                                   : "Qwen3ForCausalLM"}},
      {"model_type", deepseek ? "deepseek_v2" : to_string(c.arch)},
      {"hidden_size", c.dim},
      {"intermediate_size", c.hidden},
      {"num_hidden_layers", c.n_layers},
      {"num_attention_heads", c.n_heads},
      {"num_key_value_heads", c.n_kv_heads},
      {"head_dim", c.head_dim},
      {"hidden_act", c.activation == Activation::silu ? "silu" : "gelu_pytorch_tanh"},
      {"rms_norm_eps", c.rms_norm_eps},
      {"rope_theta", c.rope_theta},
      {"max_position_embeddings", c.max_seq},
      {"vocab_size", c.vocab},
      {"tie_word_embeddings", c.tied_classifier},
      {"torch_dtype", torch_dtype_name(storage)},
  };
  if (c.arch != Arch::qwen2) j["attention_bias"] = false;
  auto or_null = [](double v) { return v > 0 ? nlohmann::json(v) : nlohmann::json(nullptr); };
  if (c.arch == Arch::mistral) {
    j["sliding_window"] = c.sliding_window > 0 ? nlohmann::json(c.sliding_window) : nlohmann::json(nullptr);
  } else if (c.arch == Arch::gemma2) {
    j["hidden_activation"] = "gelu_pytorch_tanh";
    j["sliding_window"] = c.sliding_window;
    j["query_pre_attn_scalar"] = c.score_scale_dim();
    j["attn_logit_softcapping"] = or_null(c.attn_softcap);
    j["final_logit_softcapping"] = or_null(c.final_softcap);
  } else if (deepseek) {  // DeepseekV2Config's fields, dense: no routed experts
    j.erase("head_dim");
    j["q_lora_rank"] = c.mla.q_lora_rank > 0 ? nlohmann::json(c.mla.q_lora_rank) : nlohmann::json(nullptr);
    j["kv_lora_rank"] = c.mla.kv_lora_rank;
    j["qk_nope_head_dim"] = c.nope_dim();
    j["qk_rope_head_dim"] = c.mla.rope_dim;
    j["v_head_dim"] = c.mla.v_head_dim;
    j["n_routed_experts"] = nullptr;
    j["first_k_dense_replace"] = c.n_layers;
  } else if (c.sliding_window > 0) {
    j["use_sliding_window"] = true;
    j["sliding_window"] = c.sliding_window;
    j["max_window_layers"] = c.full_attention_layers;
  }
  if (c.rope_scaling.active()) j["rope_scaling"] = to_json(c.rope_scaling);
  return j.dump(2) + "\n";
}

void write_hf_model(const std::string& dir, const Model& m, FloatFormat storage) {
  const ModelConfig& c = m.config;
  check_hf_rope(c, "write_hf_model");
  check_hf_expressible(c, "write_hf_model");
  const std::int64_t d = c.dim;
  auto fits = [](const Matrix& x, std::int64_t rows, std::int64_t cols) { return x.rows == rows && x.cols == cols; };
  require_shape(fits(m.embedding, c.vocab, d), "the embedding");
  require_shape(fits(m.classifier, c.vocab, d), "the classifier");
  require_shape(std::int64_t(m.final_norm.size()) == d, "the final norm");
  require_shape(std::int64_t(m.layers.size()) == c.n_layers, "the layer count");
  if (c.tied_classifier && !same_values(m.classifier, m.embedding))
    throw std::invalid_argument("write_hf_model: a tied classifier must equal the embedding");

  std::vector<std::pair<std::string, Tensor>> tensors;
  auto add_matrix = [&](const std::string& name, const Matrix& w) {
    auto row = [&](std::int64_t r, double* out) { w.decode_row(int(r), out); };
    tensors.emplace_back(name, encode(name, {w.rows, w.cols}, w.rows, w.cols, row, storage, dir));
  };
  auto add_vector = [&](const std::string& name, const std::vector<double>& v) {
    auto row = [&](std::int64_t, double* out) { std::copy(v.begin(), v.end(), out); };
    tensors.emplace_back(name, encode(name, {std::int64_t(v.size())}, 1, std::int64_t(v.size()), row, storage, dir));
  };
  add_matrix("model.embed_tokens.weight", m.embedding);
  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& w = m.layers[std::size_t(l)];
    auto add_layer = [&](const LayerTensor& t) {
      const Shape s = layer_shape(c, t.suffix);
      if (t.matrix) {
        require_shape(fits(w.*t.matrix, s[0], s[1]), layer_name(l, t.suffix));
        add_matrix(layer_name(l, t.suffix), w.*t.matrix);
      } else {
        require_shape(std::int64_t((w.*t.vector).size()) == s[0], layer_name(l, t.suffix));
        add_vector(layer_name(l, t.suffix), w.*t.vector);
      }
    };
    for (const LayerTensor& t : layer_tensors(c)) add_layer(t);
    if (c.qkv_bias)
      for (const LayerTensor& t : kBiasTensors) add_layer(t);
    if (c.qk_norm)
      for (const LayerTensor& t : kQkNormTensors) add_layer(t);
  }
  add_vector("model.norm.weight", m.final_norm);
  if (!c.tied_classifier) add_matrix("lm_head.weight", m.classifier);

  write_files_atomic(dir, {{kHfConfigFile, hf_config_json(c, storage)},
                           {kHfWeightsFile, encode_safetensors(tensors, {{"format", "pt"}})}});
}

}  // namespace kvfid::ref
