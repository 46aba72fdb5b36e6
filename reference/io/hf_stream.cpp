#include "reference/io/hf_stream.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <span>
#include <sstream>
#include <stdexcept>

#include <sys/statvfs.h>

#include "reference/formats/minifloat.h"
#include "reference/io/atomic_file.h"
#include "reference/io/hf.h"
#include "reference/util/input_error.h"
#include "reference/io/safetensors.h"
#include "reference/util/parallel_chunks.h"
#include "reference/util/progress.h"

namespace kvfid::ref {

namespace {
namespace fs = std::filesystem;

// Values generated and encoded per chunk: 4 Mi doubles (32 MiB) plus their encoding
// bound the writer's memory whatever the model's size.
constexpr std::int64_t kChunkValues = std::int64_t(1) << 22;
constexpr std::uint64_t kMiB = std::uint64_t(1) << 20;

struct LayerSlot {
  const char* suffix;
  WeightRole role;
};
// write_hf_model's order (tests/reference/io/hf_stream_test.cpp holds the two to the
// same bytes).
constexpr LayerSlot kLayerSlots[] = {
    {"input_layernorm.weight", WeightRole::attn_norm},   {"self_attn.q_proj.weight", WeightRole::wq},
    {"self_attn.k_proj.weight", WeightRole::wk},         {"self_attn.v_proj.weight", WeightRole::wv},
    {"self_attn.o_proj.weight", WeightRole::wo},         {"post_attention_layernorm.weight", WeightRole::ffn_norm},
    {"mlp.gate_proj.weight", WeightRole::w1},            {"mlp.up_proj.weight", WeightRole::w3},
    {"mlp.down_proj.weight", WeightRole::w2},
};
// Gemma 2's block, as write_hf_model's kGemma2LayerTensors.
constexpr LayerSlot kGemma2LayerSlots[] = {
    {"input_layernorm.weight", WeightRole::attn_norm},   {"self_attn.q_proj.weight", WeightRole::wq},
    {"self_attn.k_proj.weight", WeightRole::wk},         {"self_attn.v_proj.weight", WeightRole::wv},
    {"self_attn.o_proj.weight", WeightRole::wo},         {"post_attention_layernorm.weight", WeightRole::post_attn_norm},
    {"pre_feedforward_layernorm.weight", WeightRole::ffn_norm},
    {"mlp.gate_proj.weight", WeightRole::w1},            {"mlp.up_proj.weight", WeightRole::w3},
    {"mlp.down_proj.weight", WeightRole::w2},            {"post_feedforward_layernorm.weight", WeightRole::post_ffn_norm},
};
// DeepSeek-V2's block in parts, as write_hf_model's: input_layernorm (kLayerSlots[0]),
// the query (full-rank, or low-rank with its norm), the latent's projections, then
// Llama's o_proj and FFN (kLayerSlots from kLlamaSlotsAfterQkv).
constexpr LayerSlot kMlaQuerySlots[] = {{"self_attn.q_proj.weight", WeightRole::wq}};
constexpr LayerSlot kMlaLowRankQuerySlots[] = {
    {"self_attn.q_a_proj.weight", WeightRole::wq_a},
    {"self_attn.q_a_layernorm.weight", WeightRole::q_a_norm},
    {"self_attn.q_b_proj.weight", WeightRole::wq},
};
constexpr LayerSlot kMlaLatentSlots[] = {
    {"self_attn.kv_a_proj_with_mqa.weight", WeightRole::wkv_a},
    {"self_attn.kv_a_layernorm.weight", WeightRole::kv_a_norm},
    {"self_attn.kv_b_proj.weight", WeightRole::wkv_b},
};
constexpr std::size_t kLlamaSlotsAfterQkv = 4;
static_assert(kLayerSlots[kLlamaSlotsAfterQkv].role == WeightRole::wo);
constexpr LayerSlot kQkNormSlots[] = {
    {"self_attn.q_norm.weight", WeightRole::q_norm},
    {"self_attn.k_norm.weight", WeightRole::k_norm},
};
constexpr LayerSlot kBiasSlots[] = {
    {"self_attn.q_proj.bias", WeightRole::bq},
    {"self_attn.k_proj.bias", WeightRole::bk},
    {"self_attn.v_proj.bias", WeightRole::bv},
};

std::vector<std::int64_t> shape_of(const ModelConfig& c, WeightRole r) {
  const std::int64_t d = c.dim, q = c.q_dim(), kv = c.kv_dim(), hid = c.hidden, v = c.vocab;
  switch (r) {
    case WeightRole::embedding: case WeightRole::classifier: return {v, d};
    case WeightRole::attn_norm: case WeightRole::ffn_norm: case WeightRole::final_norm:
    case WeightRole::post_attn_norm: case WeightRole::post_ffn_norm: return {d};
    case WeightRole::wq: return {q, c.q_in_dim()};
    case WeightRole::wq_a: return {c.mla.q_lora_rank, d};
    case WeightRole::q_a_norm: return {c.mla.q_lora_rank};
    case WeightRole::wkv_a: return {std::int64_t(c.mla.kv_lora_rank) + c.mla.rope_dim, d};
    case WeightRole::kv_a_norm: return {c.mla.kv_lora_rank};
    case WeightRole::wkv_b: return {std::int64_t(c.n_heads) * (c.nope_dim() + c.mla.v_head_dim), c.mla.kv_lora_rank};
    case WeightRole::wk: case WeightRole::wv: return {kv, d};
    case WeightRole::bq: return {q};
    case WeightRole::bk: case WeightRole::bv: return {kv};
    case WeightRole::q_norm: case WeightRole::k_norm: return {c.head_dim};
    case WeightRole::wo: return {d, c.attn_out_dim()};
    case WeightRole::w1: case WeightRole::w3: return {hid, d};
    case WeightRole::w2: return {d, hid};
  }
  throw std::logic_error("unknown weight role");
}

DType dtype_of(FloatFormat f) {
  switch (f) {
    case FloatFormat::f32: return DType::F32;
    case FloatFormat::f16: return DType::F16;
    case FloatFormat::bf16: return DType::BF16;
  }
  throw std::logic_error("unknown storage format");
}

// Little-endian bytes of n values, as encode() in hf.cpp writes them.
void encode_values(const double* v, std::int64_t n, FloatFormat storage, std::uint8_t* out, const std::string& name) {
  for (std::int64_t i = 0; i < n; ++i) {
    if (round_to_format(v[i], storage) != v[i])
      throw std::logic_error("write_hf_streamed: a value of '" + name + "' is not exactly representable in " +
                             to_string(storage));
    switch (storage) {
      case FloatFormat::f32: {
        const float f = float(v[i]);
        std::uint32_t bits;
        std::memcpy(&bits, &f, 4);
        for (int b = 0; b < 4; ++b) out[4 * i + b] = std::uint8_t(bits >> (8 * b));
        break;
      }
      case FloatFormat::f16:
      case FloatFormat::bf16: {
        const std::uint16_t bits = storage == FloatFormat::f16 ? double_to_f16(v[i]) : double_to_bf16(v[i]);
        out[2 * i] = std::uint8_t(bits & 0xff);
        out[2 * i + 1] = std::uint8_t(bits >> 8);
        break;
      }
    }
  }
}

std::vector<TensorLayout> safetensors_layout(const std::vector<HfTensorSlot>& slots, FloatFormat storage) {
  std::vector<TensorLayout> layout;
  for (const HfTensorSlot& s : slots) layout.push_back({s.name, dtype_of(storage), s.shape});
  return layout;
}

const std::map<std::string, std::string> kMetadata = {{"format", "pt"}};  // as write_hf_model

std::string gigabytes(std::uint64_t bytes) {
  std::ostringstream o;
  o.precision(3);
  o << double(bytes) / 1e9 << " GB";
  return o.str();
}

// Free space where `dir` will be created (its parent when it does not exist yet).
std::uint64_t free_bytes(const std::string& dir) {
  fs::path p = fs::path(dir).lexically_normal();
  std::error_code ec;
  while (!p.empty() && !fs::exists(p, ec)) p = p.parent_path();
  if (p.empty()) p = ".";
  struct statvfs s {};
  if (::statvfs(p.c_str(), &s) != 0) throw InputError(dir, "cannot query the free space of " + p.string());
  return std::uint64_t(s.f_bavail) * s.f_frsize;
}

}  // namespace

std::vector<HfTensorSlot> hf_tensor_layout(const ModelConfig& c) {
  std::vector<HfTensorSlot> slots;
  auto add = [&](std::string name, WeightRole r, int layer) { slots.push_back({std::move(name), shape_of(c, r), r, layer}); };
  add("model.embed_tokens.weight", WeightRole::embedding, -1);
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string prefix = "model.layers." + std::to_string(l) + ".";
    if (c.sandwich_norms) {
      for (const LayerSlot& s : kGemma2LayerSlots) add(prefix + s.suffix, s.role, l);
    } else if (c.mla.active()) {
      add(prefix + kLayerSlots[0].suffix, kLayerSlots[0].role, l);  // input_layernorm
      const std::span<const LayerSlot> query =
          c.mla.q_lora_rank > 0 ? std::span<const LayerSlot>(kMlaLowRankQuerySlots) : kMlaQuerySlots;
      for (const LayerSlot& s : query) add(prefix + s.suffix, s.role, l);
      for (const LayerSlot& s : kMlaLatentSlots) add(prefix + s.suffix, s.role, l);
      for (const LayerSlot& s : std::span<const LayerSlot>(kLayerSlots).subspan(kLlamaSlotsAfterQkv))
        add(prefix + s.suffix, s.role, l);
    } else {
      for (const LayerSlot& s : kLayerSlots) add(prefix + s.suffix, s.role, l);
    }
    if (c.qkv_bias)
      for (const LayerSlot& s : kBiasSlots) add(prefix + s.suffix, s.role, l);
    if (c.qk_norm)
      for (const LayerSlot& s : kQkNormSlots) add(prefix + s.suffix, s.role, l);
  }
  add("model.norm.weight", WeightRole::final_norm, -1);
  if (!c.tied_classifier) add("lm_head.weight", WeightRole::classifier, -1);
  return slots;
}

std::uint64_t hf_folder_bytes(const ModelConfig& c, FloatFormat storage) {
  const std::vector<HfTensorSlot> slots = hf_tensor_layout(c);
  std::uint64_t bytes = safetensors_header(safetensors_layout(slots, storage), kMetadata).size();
  for (const HfTensorSlot& s : slots) bytes += std::uint64_t(s.rows() * s.cols()) * dtype_size(dtype_of(storage));
  return bytes + hf_config_json(c, storage).size();
}

void write_hf_streamed(const std::string& dir, const ModelConfig& c, FloatFormat storage, const HfRowSource& source,
                       const HfStreamOptions& options) {
  check_hf_expressible(c, "write_hf_streamed");
  check_output_folder(dir);
  const std::uint64_t needed = hf_folder_bytes(c, storage), available = free_bytes(dir);
  if (needed > available)
    throw InputError(dir, "the model needs " + gigabytes(needed) + " of disk, only " + gigabytes(available) +
                              " is free there");
  const std::vector<HfTensorSlot> slots = hf_tensor_layout(c);
  const std::size_t value_bytes = dtype_size(dtype_of(storage));
  if (options.progress) options.progress->add_total(std::int64_t((needed + kMiB - 1) / kMiB));

  auto write_weights = [&](const ByteSink& sink) {
    sink(safetensors_header(safetensors_layout(slots, storage), kMetadata));
    std::uint64_t written = 0, reported_mib = 0;
    std::vector<double> values;        // [chunk_rows, cols]
    std::vector<std::uint8_t> bytes;   // the same, encoded
    for (const HfTensorSlot& slot : slots) {
      if (options.progress) options.progress->set_stage(slot.name);
      const std::int64_t cols = slot.cols(), chunk_rows = std::max<std::int64_t>(1, kChunkValues / cols);
      for (std::int64_t begin = 0; begin < slot.rows(); begin += chunk_rows) {
        const std::int64_t end = std::min(slot.rows(), begin + chunk_rows), n = (end - begin) * cols;
        values.resize(std::size_t(n));
        bytes.resize(std::size_t(n) * value_bytes);
        // Each row is produced and encoded by exactly one thread, the same way for any
        // thread count: the bytes cannot depend on it.
        parallel_chunks(end - begin, options.threads, [&](std::int64_t r0, std::int64_t r1) {
          double* out = values.data() + r0 * cols;
          source(slot, begin + r0, begin + r1, out);
          encode_values(out, (r1 - r0) * cols, storage, bytes.data() + r0 * cols * value_bytes, slot.name);
        });
        sink(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
        written += bytes.size();
        if (options.progress && written / kMiB > reported_mib) {
          options.progress->advance(std::int64_t(written / kMiB - reported_mib));
          reported_mib = written / kMiB;
        }
      }
    }
  };
  const std::string config_json = hf_config_json(c, storage);
  write_files_atomic_streamed(dir, {{kHfConfigFile, [&](const ByteSink& sink) { sink(config_json); }},
                                    {kHfWeightsFile, write_weights}});
  if (options.progress) options.progress->finish();
}

}  // namespace kvfid::ref
