#pragma once
// How the engine under test stores a model's weights, and the model it therefore runs.
// A weight format is either a plain float format (f32|fp32, f16|fp16, bf16: each matrix
// element rounded once, to nearest even, from its exact value) or a block format of the
// quantized-format registry (q8_0, ...: each matrix row cut into blocks of the format's
// kBlock elements, encoded from the weights rounded to FP32, as ggml quantizes an F32
// tensor). Norm weights and biases are kept in FP32 under every format (small vectors,
// as llama.cpp and vLLM keep them).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "reference/formats/float_format.h"
#include "reference/formats/quant/registry.h"
#include "reference/model/model.h"

namespace kvfid::ref {

// Parsed once where the name comes in (weight_format_from_string); the default is f32.
struct WeightFormat {
  std::string name = "f32";                               // canonical: f32, f16, bf16 or a registry name
  std::optional<FloatFormat> plain = FloatFormat::f32;  // set for the plain float formats
  int codec = -1;                                        // otherwise the block format's index in quant::Codecs
  // Where the name came from (a flag, a file), named by the errors only a model reveals
  // (check_weight_format_fits, the engine's packing), as weight_format_from_string names it.
  std::string source = "weight format";
};

// Throws InputError(source, ...) for a name that is neither.
WeightFormat weight_format_from_string(const std::string& name, const std::string& source);

// Throws InputError(format.source, ...) unless a block format's kBlock divides the column
// count of every matrix (dim, q_dim and hidden), so that blocks never straddle rows.
// Unlike the KV cache's row blocks (kvfid's own layout, padded where the block does not
// divide kv_dim: quant/row_blocks.h), weights keep ggml's layout and its rule of whole
// blocks per row: llama.cpp's quantizer stops on a q4_0 or q8_0 tensor whose rows are
// not ("Unsupported tensor size encountered"; it has fallback types for k- and i-quants
// only), so a padded weight matrix would measure a model no GGUF file can hold.
void check_weight_format_fits(const WeightFormat& format, const ModelConfig& config);

// A matrix in a block format, row by row: [rows, cols / block] blocks of the format's
// bytes, each encoded (default CodecParams) from its elements rounded to FP32.
std::vector<std::uint8_t> encode_matrix(const Matrix& m, const quant::FormatInfo& format);

// One matrix as the engine stores it: the same view read through the format's rounding
// (Matrix::decode_row applies it exactly as encode_matrix encodes). The caller checks
// that a block format fits its columns.
Matrix stored_matrix(const Matrix& m, const WeightFormat& format);

// The model whose float64 values are exactly what the engine stores: matrices rounded
// to the plain format, or encoded and decoded exactly (decode_exact); norm weights and
// biases rounded to FP32. Checks the format fits (check_weight_format_fits). The matrices
// are the same views read through the rounding (Matrix::rounded): nothing is copied
// but the small vectors, and the rounding happens row by row where a row is used.
Model stored_model(const Model& model, const WeightFormat& format);

}  // namespace kvfid::ref
