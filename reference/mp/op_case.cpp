#include "reference/mp/op_case.h"

#include <algorithm>
#include <cmath>

#include "reference/calibration/kv_policy_fit.h"
#include "reference/formats/quant/registry.h"
#include "reference/util/input_error.h"

namespace kvfid::ref {

namespace {

constexpr OpKind kAllOps[] = {OpKind::attention, OpKind::rmsnorm, OpKind::rope,
                              OpKind::softmax,   OpKind::swiglu,  OpKind::matmul};

std::int64_t numel(const std::vector<std::int64_t>& shape) {
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;
  return n;
}

std::vector<std::string> required_inputs(OpKind kind) {
  switch (kind) {
    case OpKind::attention: return {"q", "k", "v"};
    case OpKind::rmsnorm: return {"x", "weight"};
    case OpKind::rope: return {"x"};
    case OpKind::softmax: return {"x"};
    case OpKind::swiglu: return {"gate", "up"};
    case OpKind::matmul: return {"x", "w"};
  }
  return {};
}

const OpTensor& input(const OpCase& op, const std::string& name) { return op.inputs.at(name); }

}  // namespace

ModelConfig attention_config(const OpCase& op) {
  const std::vector<std::int64_t>& q = input(op, "q").shape;
  const std::vector<std::int64_t>& k = input(op, "k").shape;
  ModelConfig c;
  c.n_heads = int(q[1]), c.n_kv_heads = int(k[1]), c.head_dim = int(q[2]);
  c.dim = c.q_dim(), c.hidden = c.dim, c.n_layers = 1, c.vocab = 1, c.max_seq = int(q[0]);
  return c;
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

const char* to_string(OpKind kind) {
  switch (kind) {
    case OpKind::attention: return "attention";
    case OpKind::rmsnorm: return "rmsnorm";
    case OpKind::rope: return "rope";
    case OpKind::softmax: return "softmax";
    case OpKind::swiglu: return "swiglu";
    case OpKind::matmul: return "matmul";
  }
  return "?";
}

std::optional<OpKind> op_kind_from_string(const std::string& name) {
  for (OpKind k : kAllOps)
    if (name == to_string(k)) return k;
  return std::nullopt;
}

std::string op_kind_names() {
  std::string s;
  for (OpKind k : kAllOps) s += (s.empty() ? "" : "|") + std::string(to_string(k));
  return s;
}

void validate_op_case(const OpCase& op) {
  auto fail = [&](const std::string& problem) { throw InputError(op.source, problem); };
  std::vector<std::string> allowed = required_inputs(op.kind);
  if (op.kind == OpKind::matmul) allowed.push_back("bias");
  for (const std::string& name : required_inputs(op.kind))
    if (!op.inputs.count(name)) fail(std::string(to_string(op.kind)) + " needs a tensor '" + name + "'");
  for (const auto& [name, t] : op.inputs) {
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end())
      fail("tensor '" + name + "' is not an input of " + to_string(op.kind));
    if (t.shape.empty() || numel(t.shape) == 0) fail("tensor '" + name + "' is empty " + shape_text(t.shape));
    for (std::size_t i = 0; i < t.values.size(); ++i)
      if (!std::isfinite(t.values[i])) fail("tensor '" + name + "' holds a non-finite value at index " + std::to_string(i));
  }
  auto rank = [&](const std::string& name, std::size_t r) {
    if (input(op, name).shape.size() != r)
      fail("tensor '" + name + "' must have " + std::to_string(r) + " dimensions, has " + shape_text(input(op, name).shape));
  };
  auto same = [&](const std::string& a, const std::string& b) {
    if (input(op, a).shape != input(op, b).shape)
      fail("tensors '" + a + "' " + shape_text(input(op, a).shape) + " and '" + b + "' " +
           shape_text(input(op, b).shape) + " differ in shape");
  };
  switch (op.kind) {
    case OpKind::rmsnorm:
      rank("weight", 1);
      if (input(op, "weight").shape[0] != input(op, "x").shape.back())
        fail("tensor 'weight' " + shape_text(input(op, "weight").shape) + " does not match the last dimension of 'x' " +
             shape_text(input(op, "x").shape));
      if (!(op.params.eps > 0) || !std::isfinite(op.params.eps)) fail("rmsnorm's eps must be positive and finite");
      break;
    case OpKind::rope:
      rank("x", 3);
      if (input(op, "x").shape[2] % 2 != 0) fail("rope needs an even head_dim, 'x' is " + shape_text(input(op, "x").shape));
      if (op.params.offset < 0 || std::int64_t(op.params.offset) + input(op, "x").shape[0] > (std::int64_t(1) << 30))
        fail("rope's positions must lie in [0, 2^30)");
      if (!(op.params.theta > 0) || !std::isfinite(op.params.theta)) fail("rope's theta must be positive and finite");
      break;
    case OpKind::softmax: break;
    case OpKind::swiglu: same("gate", "up"); break;
    case OpKind::matmul: {
      rank("x", 2);
      rank("w", 2);
      const std::int64_t cols = input(op, "w").shape[1];
      if (input(op, "x").shape[1] != cols)
        fail("tensor 'x' " + shape_text(input(op, "x").shape) + " does not match the columns of 'w' " +
             shape_text(input(op, "w").shape));
      if (op.inputs.count("bias")) {
        rank("bias", 1);
        if (input(op, "bias").shape[0] != input(op, "w").shape[0]) fail("tensor 'bias' does not match the rows of 'w'");
      }
      if (op.params.weights && !op.params.weights->plain) {
        const int block = quant::all_formats()[std::size_t(op.params.weights->codec)].block;
        if (cols % block != 0)
          fail("weight format " + op.params.weights->name + " needs the columns of 'w' (" + std::to_string(cols) +
               ") to be a multiple of its block of " + std::to_string(block));
      }
      break;
    }
    case OpKind::attention: {
      rank("q", 3);
      rank("k", 3);
      same("k", "v");
      const std::vector<std::int64_t>& q = input(op, "q").shape;
      const std::vector<std::int64_t>& k = input(op, "k").shape;
      if (q[0] != k[0]) fail("attention needs as many queries as keys: 'q' " + shape_text(q) + ", 'k' " + shape_text(k));
      if (q[2] != k[2]) fail("tensors 'q' and 'k' differ in head_dim: " + shape_text(q) + ", " + shape_text(k));
      if (q[1] % k[1] != 0)
        fail("the query heads (" + std::to_string(q[1]) + ") must be a multiple of the KV heads (" + std::to_string(k[1]) + ")");
      if (op.params.window < 0) fail("attention's window must be 0 (none) or positive");
      if (op.params.kv && !op.params.causal) {
        const quant::KvPolicy policy = quant::resolve_kv_policy(*op.params.kv, {}, attention_config(op));
        if (policy.hot_window > 0 || policy.kivi)
          fail("a KV policy with a hot window or KIVI groups is defined for causal attention only");
      }
      break;
    }
  }
}

std::vector<std::int64_t> op_output_shape(const OpCase& op) {
  switch (op.kind) {
    case OpKind::rmsnorm:
    case OpKind::rope:
    case OpKind::softmax: return input(op, "x").shape;
    case OpKind::swiglu: return input(op, "gate").shape;
    case OpKind::matmul: return {input(op, "x").shape[0], input(op, "w").shape[0]};
    case OpKind::attention: {
      const std::vector<std::int64_t>& q = input(op, "q").shape;
      return {q[0], q[1] * q[2]};
    }
  }
  return {};
}

}  // namespace kvfid::ref
