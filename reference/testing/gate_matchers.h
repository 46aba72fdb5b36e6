#pragma once
// kvfid's gate inside another engine's GoogleTest suite:
//
//   const kvfid::testing::GateReference ref =
//       kvfid::testing::attention_reference(q, k, v, tokens, heads, kv_heads, head_dim, kvfid::ref::FloatFormat::f16);
//   EXPECT_THAT(my_out, kvfid::testing::PassesGate(ref));
//
// The reference is the op's exact output, every value proven to be the correctly
// rounded float64 (reference/mp/op_forward.h: enclosures), and the plain algorithm
// with every operation rounded to the kernel's arithmetic; PassesGate applies kvfid
// check's rule (reference/metrics/gate.h): max abs error and sqrt(NMSE) at most
// kGateFactor times the baseline's, above kFloorUlps ULPs of the arithmetic, after the
// gross checks (NaN/Inf, all zero, size). A failure's explanation names the op, the
// metric, its value and its bound, as kvfid check's FAIL lines do.
//
// Installed with the reference library (find_package(kvfid CONFIG), target
// kvfid::testing); header-only, over kvfid::reference and GoogleTest's gmock.
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include <gmock/gmock.h>

#include "reference/formats/float_format.h"
#include "reference/metrics/fidelity_report.h"
#include "reference/metrics/report_lines.h"
#include "reference/mp/op_forward.h"

namespace kvfid::testing {

// What a candidate is judged against.
struct GateReference {
  ref::TapTensor exact;     // named after the op; proven correctly rounded
  ref::TapTensor baseline;  // the plain algorithm at `arithmetic`, same shape
  ref::FloatFormat arithmetic = ref::FloatFormat::f32;
};

// Any op of reference/mp/op_forward.h from its named inputs.
inline GateReference op_gate_reference(const ref::OpCase& op, ref::FloatFormat arithmetic, int threads = 0) {
  return {ref::certify_op(op, ref::kOpPrecisionBits, ref::kOpMaxPrecisionBits, threads).out, ref::emulate_op(op, arithmetic, threads),
          arithmetic};
}

// A row-major float32 buffer of `shape`, read exactly.
inline ref::OpTensor op_tensor(std::vector<std::int64_t> shape, const float* data) {
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;
  return {std::move(shape), std::vector<double>(data, data + n)};
}

// Causal attention: q [tokens, heads, head_dim], k and v [tokens, kv_heads, head_dim];
// output [tokens, heads * head_dim].
inline GateReference attention_reference(const float* q, const float* k, const float* v, int tokens, int heads,
                                         int kv_heads, int head_dim, ref::FloatFormat arithmetic) {
  ref::OpCase op;
  op.kind = ref::OpKind::attention;
  op.source = "attention_reference";
  op.inputs["q"] = op_tensor({tokens, heads, head_dim}, q);
  op.inputs["k"] = op_tensor({tokens, kv_heads, head_dim}, k);
  op.inputs["v"] = op_tensor({tokens, kv_heads, head_dim}, v);
  return op_gate_reference(op, arithmetic);
}

// RMSNorm of `rows` rows of `dim`: x [rows, dim], weight [dim].
inline GateReference rmsnorm_reference(const float* x, const float* weight, int rows, int dim, double eps,
                                       ref::FloatFormat arithmetic) {
  ref::OpCase op;
  op.kind = ref::OpKind::rmsnorm;
  op.source = "rmsnorm_reference";
  op.inputs["x"] = op_tensor({rows, dim}, x);
  op.inputs["weight"] = op_tensor({dim}, weight);
  op.params.eps = eps;
  return op_gate_reference(op, arithmetic);
}

// out = x w^T (+ bias): x [tokens, cols], w [rows, cols], bias [rows] or null.
inline GateReference matmul_reference(const float* x, const float* w, const float* bias, int tokens, int rows, int cols,
                                      ref::FloatFormat arithmetic) {
  ref::OpCase op;
  op.kind = ref::OpKind::matmul;
  op.source = "matmul_reference";
  op.inputs["x"] = op_tensor({tokens, cols}, x);
  op.inputs["w"] = op_tensor({rows, cols}, w);
  if (bias) op.inputs["bias"] = op_tensor({rows}, bias);
  return op_gate_reference(op, arithmetic);
}

// The matcher behind PassesGate: any container of numbers, row-major in the
// reference's shape.
class PassesGateMatcher {
 public:
  explicit PassesGateMatcher(GateReference reference) : ref_(std::move(reference)) {}

  template <typename Container>
  bool MatchAndExplain(const Container& candidate, ::testing::MatchResultListener* listener) const {
    ref::TapTensor tap{ref_.exact.name, ref_.exact.shape, {}};
    for (const auto& x : candidate) tap.values.push_back(double(x));
    if (tap.values.size() != ref_.exact.values.size()) {
      *listener << "has " << tap.values.size() << " values where " << ref_.exact.name << " has "
                << ref_.exact.values.size();
      return false;
    }
    const ref::FidelityReport report =
        ref::build_fidelity_report({ref_.exact}, {tap}, {ref_.baseline}, {ref::FloatFormat::f32, ref_.arithmetic});
    std::string why;
    for (const ref::GrossFinding& f : report.findings)
      if (f.fails) why += (why.empty() ? "" : "; ") + ref::describe_finding(f);
    for (const ref::ReportRow& row : report.rows)
      if (!row.pass) why += (why.empty() ? "" : "; ") + ref::describe_failure(row);
    if (!why.empty()) *listener << why;
    return report.pass();
  }

  void DescribeTo(std::ostream* os) const {
    *os << "passes kvfid's gate for " << ref_.exact.name << " in " << ref::to_string(ref_.arithmetic)
        << " arithmetic (error at most 2x the plain algorithm's, above a floor of a few ULPs)";
  }
  void DescribeNegationTo(std::ostream* os) const {
    *os << "fails kvfid's gate for " << ref_.exact.name << " in " << ref::to_string(ref_.arithmetic) << " arithmetic";
  }

 private:
  GateReference ref_;
};

inline ::testing::PolymorphicMatcher<PassesGateMatcher> PassesGate(GateReference reference) {
  return ::testing::MakePolymorphicMatcher(PassesGateMatcher(std::move(reference)));
}

// The same from an exact output and a baseline the caller already has (kvfid op
// --golden, or their own emulation), both row-major in one shape.
inline ::testing::PolymorphicMatcher<PassesGateMatcher> PassesGate(std::vector<double> exact, std::vector<double> baseline,
                                                                    ref::FloatFormat arithmetic = ref::FloatFormat::f32,
                                                                    std::string name = "output") {
  const std::vector<std::int64_t> shape = {std::int64_t(exact.size())};
  return PassesGate(GateReference{{name, shape, std::move(exact)}, {name, shape, std::move(baseline)}, arithmetic});
}

}  // namespace kvfid::testing
