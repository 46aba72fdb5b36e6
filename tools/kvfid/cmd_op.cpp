// kvfid op: one operation of another engine, gated against its exact output.
#include <iostream>

#include "reference/formats/float_format.h"
#include "reference/golden/golden_io.h"
#include "reference/io/atomic_file.h"
#include "reference/io/safetensors.h"
#include "reference/metrics/fidelity_report.h"
#include "reference/metrics/report_json.h"
#include "reference/metrics/report_junit.h"
#include "reference/metrics/report_table.h"
#include "reference/mp/golden_forward.h"
#include "reference/mp/op_forward.h"
#include "reference/util/input_error.h"
#include "tools/kvfid/command.h"
#include "tools/kvfid/fidelity_command.h"
#include "tools/kvfid/threads_option.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the specification's names: the layer below

extern const CommandSpec kOpCommand;

namespace {

// The op, its inputs read exactly, and its parameters, typed once here.
OpCase read_op_case(const ParsedArgs& args) {
  const std::optional<OpKind> kind = op_kind_from_string(args.operand());
  if (!kind) throw UsageError("unknown op '" + args.operand() + "' (ops: " + op_kind_names() + ")");
  OpCase op;
  op.kind = *kind;
  op.source = args.str("inputs");
  const SafetensorsFile file = read_safetensors(op.source);
  for (const auto& [name, tensor] : file.tensors)
    op.inputs[name] = OpTensor{tensor.shape, tensor_values(tensor, op.source + ": tensor '" + name + "'")};
  OpParams& p = op.params;
  p.eps = args.number_or("eps", p.eps);
  p.theta = args.number_or("theta", p.theta);
  const std::string pairing = args.str_or("pairing", "rotate_half");
  if (pairing != "rotate_half" && pairing != "interleaved") throw UsageError("--pairing must be rotate_half or interleaved");
  p.pairing = pairing == "interleaved" ? RopeStyle::interleaved : RopeStyle::rotate_half;
  const long long offset = args.integer_or("offset", 0);
  if (offset < 0 || offset >= (1LL << 30)) throw UsageError("--offset must be in [0, 2^30)");
  p.offset = int(offset);
  if (args.has("weights")) p.weights = weight_format_from_string(args.str("weights"), "--weights");
  if (args.has("kv")) p.kv = quant::parse_kv_policy_spec(args.str("kv"), "--kv");
  const std::string mask = args.str_or("mask", "causal");
  if (mask != "causal" && mask != "full") throw UsageError("--mask must be causal or full");
  p.causal = mask == "causal";
  const long long window = args.integer_or("window", 0);
  if (window < 0 || window > (1LL << 30)) throw UsageError("--window must be 0 (none) or positive");
  p.window = int(window);
  validate_op_case(op);
  return op;
}

// The candidate's output: its tensor named after the op, or its only tensor.
TapTensor read_candidate(const std::string& path, const OpCase& op) {
  const SafetensorsFile file = read_safetensors(path);
  const std::string name = to_string(op.kind);
  if (!file.has(name) && file.tensors.size() != 1)
    throw InputError(path, "holds no tensor '" + name + "' and more than one other");
  const auto& [stored_name, tensor] = file.has(name) ? *file.tensors.find(name) : *file.tensors.begin();
  if (tensor.shape != op_output_shape(op))
    throw InputError(path, "tensor '" + stored_name + "' does not have the output's shape " + shape_text(op_output_shape(op)));
  return TapTensor{name, tensor.shape, tensor_values(tensor, path + ": tensor '" + stored_name + "'")};
}

int run_op(const ParsedArgs& args) {
  if (!args.has("candidate") && !args.has("golden")) throw UsageError("give --candidate, --golden or both");
  check_report_paths(args);
  const FloatFormat arithmetic = float_format_from_string(args.str_or("arith", "f32"), "--arith");
  const long long bits = args.integer_or("bits", kOpPrecisionBits);
  if (bits < 2 || bits > kOpMaxPrecisionBits) throw UsageError("--bits must be between 2 and " + std::to_string(kOpMaxPrecisionBits));
  const int threads = threads_from_args(args);
  const OpCase op = read_op_case(args);
  const std::optional<TapTensor> candidate =
      args.has("candidate") ? std::optional<TapTensor>(read_candidate(args.str("candidate"), op)) : std::nullopt;

  const OpGolden exact = certify_op(op, int(bits), kOpMaxPrecisionBits, threads);
  std::cerr << "kvfid op " << to_string(op.kind) << ": " << exact.certification.at("values_certified")
            << " values proven at " << exact.certification.at("precision_bits") << " bits\n";
  if (args.has("golden"))
    write_safetensors(args.str("golden"), {{exact.out.name, tensor_f64(exact.out.shape, exact.out.values)}},
                      {{"kvfid_certification", exact.certification.dump()}});
  if (!candidate) return kExitPass;

  const TapTensor baseline = emulate_op(op, arithmetic, threads);
  const FidelityReport report = build_fidelity_report({exact.out}, {*candidate}, {baseline}, {FloatFormat::f32, arithmetic});
  std::cout << format_report_table(report);
  const nlohmann::json options = {{"op", to_string(op.kind)},
                                  {"inputs", op.source},
                                  {"candidate", args.str("candidate")},
                                  {"arith", to_string(arithmetic)}};
  if (args.has("json"))
    write_file_atomic(args.str("json"),
                      report_to_json(report, "op", options, {{"certification", exact.certification}}).dump(2) + "\n");
  if (args.has("junit")) write_file_atomic(args.str("junit"), report_to_junit(report, "kvfid.op"));
  return report.pass() ? kExitPass : kExitFidelityFailure;
}

}  // namespace

extern const CommandSpec kOpCommand{
    "op",
    "gate one operation of an engine against its exact output",
    "kvfid op NAME (attention, rmsnorm, rope, softmax, swiglu, matmul) reads the op's inputs from a\n"
    "safetensors file (F32, F16, BF16 or F64, read exactly; names: rmsnorm x, weight; rope x\n"
    "[tokens, heads, head_dim]; softmax x (rows of the last dimension); swiglu gate, up; matmul x\n"
    "[tokens, cols], w [rows, cols], optional bias; attention q [tokens, heads, head_dim], k, v\n"
    "[tokens, kv_heads, head_dim], --mask causal|full, --window). It computes the exact output in MPFR, each value proven\n"
    "to be the correctly rounded float64 (ball arithmetic), and the plain algorithm with every\n"
    "operation rounded to --arith (its inputs rounded to that format), and gates the candidate's\n"
    "output (the tensor named after the op, or the file's only tensor) as kvfid check gates a tap:\n"
    "max abs error and sqrt(NMSE) at most 2x the baseline's, above a floor of a few ULPs. Prints a\n"
    "table; exit 0 pass, 1 fail, 2 bad input.",
    {{"inputs", "FILE", "the op's inputs, a .safetensors file", true},
     {"candidate", "FILE", "the engine's output, a .safetensors file"},
     {"golden", "FILE", "also write the exact output (F64 safetensors)"},
     {"arith", "FORMAT", "arithmetic of the baseline: f32, f16 or bf16 (default f32)"},
     {"eps", "E", "rmsnorm: epsilon inside the square root (default 1e-6)"},
     {"theta", "T", "rope: base of the frequencies (default 10000)"},
     {"pairing", "rotate_half|interleaved", "rope: pairs (i, i + head_dim/2) or (2i, 2i + 1) (default rotate_half)"},
     {"offset", "P", "rope: position of the first token (default 0)"},
     {"weights", "FORMAT", "matmul: w as stored in f32, f16, bf16 or a block format such as q8_0 (default: as given)"},
     {"kv", "POLICY", "attention: K and V as a cache stores them, e.g. q8_0 or k=q4_0+v=f16"},
     {"mask", "causal|full", "attention: keys up to each query's position, or all (default causal)"},
     {"window", "W", "attention: a sliding window, no key before position t - W + 1 (default 0: none)"},
     {"bits", "N", "working precision of the first attempt (default 128)"},
     threads_option(),
     json_report_option(),
     junit_report_option()},
    run_op,
    "NAME"};

}  // namespace kvfid::cli
