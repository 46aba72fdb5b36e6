#pragma once
// One operation of the forward pass as a user hands it to kvfid op (op_forward.h): which
// op, its named inputs, its parameters, checked against each other before anything runs.
//
// Inputs, by name (any other leading shape of x is flattened into rows):
//   rmsnorm    x [rows, dim], weight [dim]                        -> [rows, dim]
//   rope       x [tokens, heads, head_dim]                        -> same shape
//   softmax    x [rows, n]                                        -> same shape
//   swiglu     gate [n...], up [the same shape]                   -> same shape
//   matmul     x [tokens, cols], w [rows, cols], bias [rows] opt. -> [tokens, rows]
//   attention  q [tokens, n_heads, head_dim],                     -> [tokens, n_heads * head_dim]
//              k, v [tokens, n_kv_heads, head_dim]; n_kv_heads dividing n_heads; causal or
//              not, with an optional sliding window (attention.h's AttentionMask)
// The baseline rounds every input to its format first, as a plain implementation in
// that format holds them; weights (w, and rmsnorm's weight) stay as given, as stored
// weights do in the emulation.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "reference/formats/float_format.h"
#include "reference/formats/quant/kv_policy.h"
#include "reference/model/config.h"
#include "reference/model/weight_storage.h"
#include "reference/mp/attention.h"

namespace kvfid::ref {

enum class OpKind { attention, rmsnorm, rope, softmax, swiglu, matmul };

const char* to_string(OpKind kind);
// nullopt for a name that is no op.
std::optional<OpKind> op_kind_from_string(const std::string& name);
// Every op's name, for usage text.
std::string op_kind_names();

// Exact values of an input tensor (safetensors F32/F16/BF16/F64 read exactly).
struct OpTensor {
  std::vector<std::int64_t> shape;
  std::vector<double> values;  // row-major
};

struct OpParams {
  double eps = 1e-6;                         // rmsnorm: inside the square root
  double theta = 10000.0;                    // rope: the base of the frequencies
  RopeStyle pairing = RopeStyle::rotate_half;  // rope: which elements turn together
  int offset = 0;                            // rope: the position of the first token
  std::optional<WeightFormat> weights;       // matmul: w as stored in this format
  std::optional<quant::KvPolicySpec> kv;     // attention: K and V as the cache stores them
  bool causal = true;                        // attention: keys up to the query's position, or all
  int window = 0;                            // attention: > 0, none before position t - window + 1
};

struct OpCase {
  OpKind kind = OpKind::softmax;
  std::map<std::string, OpTensor> inputs;
  OpParams params;
  std::string source;  // the inputs' file, named by every error about them
};

// Checks every input's presence, dimensions and agreement with the others (and that
// nothing else is there); throws InputError(source, ...) naming the first problem.
void validate_op_case(const OpCase& op);

std::vector<std::int64_t> op_output_shape(const OpCase& op);

// "[2, 3, 4]", as the errors about shapes write them.
std::string shape_text(const std::vector<std::int64_t>& shape);

// The config attention and the KV store read for an attention case: heads and widths
// from q and k (validated first).
ModelConfig attention_config(const OpCase& op);

}  // namespace kvfid::ref
