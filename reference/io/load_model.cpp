#include "reference/io/load_model.h"

#include <filesystem>

#include "reference/io/gguf.h"
#include "reference/io/gguf_model.h"
#include "reference/io/hf.h"
#include "reference/util/input_error.h"
#include "reference/io/llama2c.h"
#include "reference/io/safetensors.h"
#include "reference/io/sha256.h"

namespace kvfid::ref {

namespace {
namespace fs = std::filesystem;

enum class ModelKind { hf_folder, llama2c_file, gguf_file };

ModelKind kind_of(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (!fs::exists(st)) throw InputError(path, "no such file or folder");
  if (fs::is_directory(st)) return ModelKind::hf_folder;
  if (fs::is_regular_file(st)) return is_gguf_file(path) ? ModelKind::gguf_file : ModelKind::llama2c_file;
  throw InputError(path, "neither a model file (llama2.c, GGUF) nor a model folder");
}

std::string weights_file(const std::string& path, ModelKind kind) {
  return kind == ModelKind::hf_folder ? (fs::path(path) / kHfWeightsFile).string() : path;
}

}  // namespace

Model load_model(const std::string& path) {
  const ModelKind kind = kind_of(path);
  Model m = kind == ModelKind::hf_folder ? read_hf_model(path)
            : kind == ModelKind::gguf_file ? read_gguf_model(path)
                                           : read_llama2c(path);
  m.source = path;
  m.sha256 = sha256_file(weights_file(path, kind));
  return m;
}

std::uint64_t model_weights_bytes(const std::string& path) {
  const std::string file = weights_file(path, kind_of(path));
  std::error_code ec;
  const std::uintmax_t n = fs::file_size(file, ec);
  if (ec) throw InputError(file, "cannot read its size: " + ec.message());
  return n;
}

std::optional<WeightType> stored_matrix_type(const std::string& path) {
  const ModelKind kind = kind_of(path);
  if (kind != ModelKind::hf_folder) return std::nullopt;
  const MappedSafetensors file = map_safetensors(weights_file(path, kind));
  std::optional<WeightType> common;
  for (const auto& [name, t] : file.tensors) {
    if (t.shape.size() != 2) continue;  // norm weights and biases: vectors, always packed to FP32
    const std::optional<WeightType> type = weight_dtype(t.dtype);
    if (!type || (common && *common != *type)) return std::nullopt;
    common = type;
  }
  return common;
}

ModelConfig load_model_config(const std::string& path) {
  switch (kind_of(path)) {
    case ModelKind::hf_folder: return read_hf_config(path);
    case ModelKind::gguf_file: return read_gguf_config(path);
    case ModelKind::llama2c_file: break;
  }
  return read_llama2c_config(path);
}

}  // namespace kvfid::ref
