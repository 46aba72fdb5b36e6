#pragma once
// llama2.c "version 0" checkpoints: a 7 x int32 header, then float32 arrays
// (layout in shared/models/README.md). A negative vocab size marks an unshared
// classifier stored after everything else.
#include <cstdint>
#include <string>

#include "reference/model/model.h"

namespace kvfid::ref {

struct Llama2cHeader {
  std::int32_t dim = 0;
  std::int32_t hidden_dim = 0;
  std::int32_t n_layers = 0;
  std::int32_t n_heads = 0;
  std::int32_t n_kv_heads = 0;
  std::int32_t vocab_size = 0;  // negative: the classifier is stored separately
  std::int32_t seq_len = 0;
};
inline constexpr std::uint64_t kLlama2cHeaderBytes = 7 * 4;

// The configuration the header describes: llama, interleaved RoPE, eps 1e-5,
// theta 10000 (llama2.c hard-codes both). Throws InputError(source, ...) when the
// header is inconsistent.
ModelConfig llama2c_config(const Llama2cHeader& header, const std::string& source);
// Bytes of a checkpoint with this (validated) configuration, header included.
// Throws InputError(source, ...) when that overflows 64 bits (a garbage header).
std::uint64_t llama2c_file_bytes(const ModelConfig& config, const std::string& source);

// Reads the header and checks the file size against it, without reading weights.
ModelConfig read_llama2c_config(const std::string& path);
// The whole model; rejects a size that disagrees with the header and NaN/Inf weights.
// The freq_cis tables are skipped: kvfid computes RoPE itself.
Model read_llama2c(const std::string& path);

}  // namespace kvfid::ref
