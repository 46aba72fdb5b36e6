// kvfid op: one harness over every op and the shapes people run (head_dim 64 and 128,
// GQA 7:1 and Qwen2.5-0.5B's 14:2, odd sizes). For each case a naive kernel written
// here, independently of kvfid (float arithmetic, inputs and output in the format, as a
// mixed-precision kernel holds them), passes in f32, f16 and bf16; the same output with
// its largest value moved fails and is named; the exact output (--golden) agrees with a
// long double computation of the same formula; bad inputs are refused with one line.
#include <cmath>
#include <filesystem>
#include <functional>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "reference/formats/minifloat.h"
#include "reference/io/safetensors.h"
#include "tests/common/model_files.h"
#include "tests/common/run_cli.h"
#include "tests/common/test_env.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the specification's names: the layer below
namespace {

using Inputs = std::map<std::string, std::pair<std::vector<std::int64_t>, std::vector<double>>>;

// A value rounded to the candidate's format (f32: through float).
double in_format(double x, const std::string& f) {
  if (f == "f16") return minifloat_round(x, kFp16);
  if (f == "bf16") return minifloat_round(x, kBf16);
  return double(float(x));
}

struct Case {
  std::string name;  // for the trace
  std::string op;
  std::vector<std::string> options;  // op parameters
  Inputs inputs;
  // The naive kernel: inputs (already in the format) -> output in float arithmetic, and
  // the same formula in long double (the oracle of --golden).
  std::function<std::vector<double>(const Inputs&, bool wide)> kernel;
  std::vector<std::int64_t> out_shape;
};

std::vector<double> draw(std::mt19937_64& rng, std::size_t n, double scale) {
  std::normal_distribution<double> normal(0.0, scale);
  std::vector<double> v(n);
  for (double& x : v) x = double(float(normal(rng)));  // binary32 inputs
  return v;
}

// Long double when `wide`, else float: the naive kernel's arithmetic.
template <typename F>
std::vector<double> run(bool wide, F f) {
  return wide ? f((long double)0) : f(0.0f);
}

Case rmsnorm_case(std::mt19937_64& rng, int rows, int dim) {
  Case c{"rmsnorm " + std::to_string(rows) + "x" + std::to_string(dim), "rmsnorm", {"--eps", "1e-6"}, {}, {}, {rows, dim}};
  c.inputs["x"] = {{rows, dim}, draw(rng, std::size_t(rows) * dim, 1.5)};
  c.inputs["weight"] = {{dim}, draw(rng, std::size_t(dim), 1.0)};
  c.kernel = [rows, dim](const Inputs& in, bool wide) {
    return run(wide, [&](auto zero) {
      using T = decltype(zero);
      const auto& x = in.at("x").second;
      const auto& w = in.at("weight").second;
      std::vector<double> out(x.size());
      for (int r = 0; r < rows; ++r) {
        T sum = 0;
        for (int i = 0; i < dim; ++i) sum += T(x[std::size_t(r) * dim + i]) * T(x[std::size_t(r) * dim + i]);
        const T inv = T(1) / std::sqrt(sum / T(dim) + T(1e-6));
        for (int i = 0; i < dim; ++i) out[std::size_t(r) * dim + i] = double(T(x[std::size_t(r) * dim + i]) * inv * T(w[i]));
      }
      return out;
    });
  };
  return c;
}

Case softmax_case(std::mt19937_64& rng, int rows, int n) {
  Case c{"softmax " + std::to_string(rows) + "x" + std::to_string(n), "softmax", {}, {}, {}, {rows, n}};
  c.inputs["x"] = {{rows, n}, draw(rng, std::size_t(rows) * n, 3.0)};
  c.kernel = [rows, n](const Inputs& in, bool wide) {
    return run(wide, [&](auto zero) {
      using T = decltype(zero);
      const auto& x = in.at("x").second;
      std::vector<double> out(x.size());
      for (int r = 0; r < rows; ++r) {
        T max = T(x[std::size_t(r) * n]), sum = 0;
        for (int j = 0; j < n; ++j) max = std::max(max, T(x[std::size_t(r) * n + j]));
        for (int j = 0; j < n; ++j) sum += std::exp(T(x[std::size_t(r) * n + j]) - max);
        for (int j = 0; j < n; ++j) out[std::size_t(r) * n + j] = double(std::exp(T(x[std::size_t(r) * n + j]) - max) / sum);
      }
      return out;
    });
  };
  return c;
}

Case swiglu_case(std::mt19937_64& rng, int n) {
  Case c{"swiglu " + std::to_string(n), "swiglu", {}, {}, {}, {n}};
  c.inputs["gate"] = {{n}, draw(rng, std::size_t(n), 2.0)};
  c.inputs["up"] = {{n}, draw(rng, std::size_t(n), 2.0)};
  c.kernel = [n](const Inputs& in, bool wide) {
    return run(wide, [&](auto zero) {
      using T = decltype(zero);
      std::vector<double> out(std::size_t(n), 0.0);
      for (int i = 0; i < n; ++i) {
        const T g = T(in.at("gate").second[i]);
        out[i] = double(g / (T(1) + std::exp(-g)) * T(in.at("up").second[i]));
      }
      return out;
    });
  };
  return c;
}

Case matmul_case(std::mt19937_64& rng, int tokens, int rows, int cols, bool bias) {
  Case c{"matmul " + std::to_string(tokens) + "x" + std::to_string(cols) + " -> " + std::to_string(rows), "matmul", {}, {}, {}, {tokens, rows}};
  c.inputs["x"] = {{tokens, cols}, draw(rng, std::size_t(tokens) * cols, 1.0)};
  c.inputs["w"] = {{rows, cols}, draw(rng, std::size_t(rows) * cols, 0.05)};
  if (bias) c.inputs["bias"] = {{rows}, draw(rng, std::size_t(rows), 0.1)};
  c.kernel = [tokens, rows, cols, bias](const Inputs& in, bool wide) {
    return run(wide, [&](auto zero) {
      using T = decltype(zero);
      std::vector<double> out(std::size_t(tokens) * rows);
      for (int t = 0; t < tokens; ++t)
        for (int r = 0; r < rows; ++r) {
          T s = bias ? T(in.at("bias").second[r]) : T(0);
          for (int j = 0; j < cols; ++j) s += T(in.at("w").second[std::size_t(r) * cols + j]) * T(in.at("x").second[std::size_t(t) * cols + j]);
          out[std::size_t(t) * rows + r] = double(s);
        }
      return out;
    });
  };
  return c;
}

Case rope_case(std::mt19937_64& rng, int tokens, int heads, int head_dim, bool interleaved, int offset) {
  Case c{"rope " + std::string(interleaved ? "interleaved" : "rotate_half") + " hd " + std::to_string(head_dim) + " offset " + std::to_string(offset),
         "rope",
         {"--theta", "1000000", "--pairing", interleaved ? "interleaved" : "rotate_half", "--offset", std::to_string(offset)},
         {},
         {},
         {tokens, heads, head_dim}};
  c.inputs["x"] = {{tokens, heads, head_dim}, draw(rng, std::size_t(tokens) * heads * head_dim, 1.0)};
  c.kernel = [=](const Inputs& in, bool wide) {
    // The angles in long double either way (a kernel's table is precomputed accurately).
    const int half = head_dim / 2;
    return run(wide, [&](auto zero) {
      using T = decltype(zero);
      const auto& x = in.at("x").second;
      std::vector<double> out(x.size());
      for (int t = 0; t < tokens; ++t)
        for (int h = 0; h < heads; ++h)
          for (int i = 0; i < half; ++i) {
            const long double angle = (long double)(offset + t) * std::pow(1e6L, -2.0L * i / head_dim);
            const T co = T(std::cos(angle)), si = T(std::sin(angle));
            const std::size_t base = (std::size_t(t) * heads + h) * head_dim;
            const std::size_t ia = base + (interleaved ? 2 * i : i), ib = base + (interleaved ? 2 * i + 1 : i + half);
            out[ia] = double(T(x[ia]) * co - T(x[ib]) * si);
            out[ib] = double(T(x[ia]) * si + T(x[ib]) * co);
          }
      return out;
    });
  };
  return c;
}

Case attention_case(std::mt19937_64& rng, int tokens, int heads, int kv_heads, int head_dim, bool causal = true,
                    int window = 0) {
  Case c{"attention " + std::to_string(heads) + ":" + std::to_string(kv_heads) + " hd " + std::to_string(head_dim) +
             (causal ? "" : " full") + (window ? " window " + std::to_string(window) : ""),
         "attention",
         {"--mask", causal ? "causal" : "full", "--window", std::to_string(window)},
         {},
         {},
         {tokens, heads * head_dim}};
  c.inputs["q"] = {{tokens, heads, head_dim}, draw(rng, std::size_t(tokens) * heads * head_dim, 1.0)};
  c.inputs["k"] = {{tokens, kv_heads, head_dim}, draw(rng, std::size_t(tokens) * kv_heads * head_dim, 1.0)};
  c.inputs["v"] = {{tokens, kv_heads, head_dim}, draw(rng, std::size_t(tokens) * kv_heads * head_dim, 1.0)};
  c.kernel = [=](const Inputs& in, bool wide) {
    return run(wide, [&](auto zero) {
      using T = decltype(zero);
      const auto& q = in.at("q").second;
      const auto& k = in.at("k").second;
      const auto& v = in.at("v").second;
      std::vector<double> out(std::size_t(tokens) * heads * head_dim);
      const T scale = T(1) / std::sqrt(T(head_dim));
      for (int t = 0; t < tokens; ++t)
        for (int h = 0; h < heads; ++h) {
          const int g = h / (heads / kv_heads);
          const int first = window ? std::max(0, t - window + 1) : 0, last = causal ? t : tokens - 1;
          std::vector<T> p(std::size_t(tokens), T(0));
          T max = -INFINITY, sum = 0;
          for (int j = first; j <= last; ++j) {
            T s = 0;
            for (int d = 0; d < head_dim; ++d)
              s += T(q[(std::size_t(t) * heads + h) * head_dim + d]) * T(k[(std::size_t(j) * kv_heads + g) * head_dim + d]);
            p[j] = s * scale;
            max = std::max(max, p[j]);
          }
          for (int j = first; j <= last; ++j) sum += (p[j] = std::exp(p[j] - max));
          for (int d = 0; d < head_dim; ++d) {
            T o = 0;
            for (int j = first; j <= last; ++j) o += p[j] / sum * T(v[(std::size_t(j) * kv_heads + g) * head_dim + d]);
            out[(std::size_t(t) * heads + h) * head_dim + d] = double(o);
          }
        }
      return out;
    });
  };
  return c;
}

std::vector<Case> all_cases() {
  std::mt19937_64 rng(test::test_seed());
  return {rmsnorm_case(rng, 3, 896),          rmsnorm_case(rng, 2, 67),
          softmax_case(rng, 4, 151),          swiglu_case(rng, 487),
          matmul_case(rng, 3, 64, 896, true), matmul_case(rng, 2, 37, 129, false),
          rope_case(rng, 5, 3, 64, false, 0), rope_case(rng, 3, 2, 128, true, 4093),
          attention_case(rng, 6, 7, 1, 128),  attention_case(rng, 5, 14, 2, 64),
          attention_case(rng, 3, 3, 3, 17),   attention_case(rng, 5, 4, 2, 32, false),
          attention_case(rng, 7, 4, 1, 64, true, 3)};
}

std::string write_tensors(const std::string& path, const std::vector<std::pair<std::string, std::pair<std::vector<std::int64_t>, std::vector<double>>>>& named) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& [name, t] : named) tensors.emplace_back(name, tensor_f32(t.first, std::vector<float>(t.second.begin(), t.second.end())));
  write_safetensors(path, tensors);
  return path;
}

std::vector<std::string> op_args(const Case& c, const std::string& inputs, const std::vector<std::string>& more) {
  std::vector<std::string> args = {"op", c.op, "--inputs", inputs};
  args.insert(args.end(), c.options.begin(), c.options.end());
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

TEST(CmdOp, NaiveKernelsPassAndAMovedValueFails) {
  SCOPED_TRACE(test::seed_trace());
  const std::string dir = test::scratch_dir("cmd_op");
  for (const Case& c : all_cases())
    for (const std::string format : {"f32", "f16", "bf16"}) {
      SCOPED_TRACE(c.name + ", " + format);
      // The kernel's inputs in its format, as it holds them; the file holds the same values.
      Inputs in = c.inputs;
      for (auto& [name, t] : in)
        for (double& x : t.second) x = name == "w" || name == "weight" || name == "bias" ? x : in_format(x, format);
      std::vector<std::pair<std::string, std::pair<std::vector<std::int64_t>, std::vector<double>>>> named(in.begin(), in.end());
      const std::string inputs = write_tensors(dir + "/in.safetensors", named);
      std::vector<double> out = c.kernel(in, false);
      for (double& x : out) x = in_format(x, format);
      const std::string good = write_tensors(dir + "/good.safetensors", {{c.op, {c.out_shape, out}}});
      const auto pass = test::run_kvfid(op_args(c, inputs, {"--candidate", good, "--arith", format, "--json", dir + "/r.json"}));
      EXPECT_EQ(pass.exit_code, test::kExitPass) << pass.out << pass.err;
      const nlohmann::json report = nlohmann::json::parse(test::read_bytes(dir + "/r.json"));
      EXPECT_EQ(report.at("pass"), true);
      EXPECT_EQ(report.at("golden").at("certification").at("method_name"), "enclosure");

      // Move the largest value by four times the bound its max-abs row allows.
      double bound = 0;
      for (const auto& row : report.at("rows"))
        if (row.at("metric") == "max_abs" && row.at("gated")) bound = row.at("bound").get<double>();
      ASSERT_GT(bound, 0.0);
      std::size_t largest = 0;
      for (std::size_t i = 0; i < out.size(); ++i)
        if (std::fabs(out[i]) > std::fabs(out[largest])) largest = i;
      out[largest] += out[largest] >= 0 ? 4 * bound : -4 * bound;
      const std::string bad = write_tensors(dir + "/bad.safetensors", {{c.op, {c.out_shape, out}}});
      const auto fail = test::run_kvfid(op_args(c, inputs, {"--candidate", bad, "--arith", format, "--junit", dir + "/r.xml"}));
      EXPECT_EQ(fail.exit_code, test::kExitFail) << fail.out << fail.err;
      EXPECT_NE(fail.out.find("FAIL " + c.op), std::string::npos) << fail.out;
      EXPECT_NE(test::read_bytes(dir + "/r.xml").find("<failure"), std::string::npos);
    }
}

// --golden writes the exact output: a long double evaluation of the same formula lies
// within its own rounding error (64-bit significand, a few hundred operations deep).
TEST(CmdOp, GoldenIsTheExactOutput) {
  SCOPED_TRACE(test::seed_trace());
  constexpr double kLongDoubleRelativeError = 0x1p-50;  // 2^-63 per operation, ~2^13 operations deep at most
  const std::string dir = test::scratch_dir("cmd_op_golden");
  for (const Case& c : all_cases()) {
    SCOPED_TRACE(c.name);
    std::vector<std::pair<std::string, std::pair<std::vector<std::int64_t>, std::vector<double>>>> named(c.inputs.begin(), c.inputs.end());
    const std::string inputs = write_tensors(dir + "/in.safetensors", named);
    const auto r = test::run_kvfid(op_args(c, inputs, {"--golden", dir + "/g.safetensors"}));
    ASSERT_EQ(r.exit_code, test::kExitPass) << r.err;
    const SafetensorsFile g = read_safetensors(dir + "/g.safetensors");
    const std::vector<double> exact = tensor_values(g.get(c.op), "golden");
    const std::vector<double> wide = c.kernel(c.inputs, true);
    ASSERT_EQ(exact.size(), wide.size());
    double scale = 0;
    for (double x : wide) scale = std::max(scale, std::fabs(x));
    for (std::size_t i = 0; i < exact.size(); ++i)
      ASSERT_LE(std::fabs(exact[i] - wide[i]), kLongDoubleRelativeError * scale) << "index " << i;
  }
}

// --kv and --weights store their operands as an engine does: the exact output over
// f16-stored K and V (or bf16-stored weights) is byte for byte the exact output over
// inputs rounded to that format beforehand, and differs from the unrounded one.
TEST(CmdOp, StorageFormatsAreTheRoundedOperands) {
  SCOPED_TRACE(test::seed_trace());
  const std::string dir = test::scratch_dir("cmd_op_storage");
  std::mt19937_64 rng(test::test_seed());
  struct Stored {
    Case c;
    std::vector<std::string> option;  // the storage flag
    std::vector<std::string> rounded;  // the inputs it rounds
    std::string format;
  };
  const std::vector<Stored> cases = {{attention_case(rng, 5, 7, 1, 128), {"--kv", "f16"}, {"k", "v"}, "f16"},
                                     {matmul_case(rng, 3, 16, 64, true), {"--weights", "bf16"}, {"w"}, "bf16"}};
  for (const Stored& s : cases) {
    SCOPED_TRACE(s.c.name);
    auto golden = [&](const Inputs& in, const std::vector<std::string>& more, const std::string& name) {
      std::vector<std::pair<std::string, std::pair<std::vector<std::int64_t>, std::vector<double>>>> named(in.begin(), in.end());
      const std::string inputs = write_tensors(dir + "/" + name + ".in.safetensors", named);
      std::vector<std::string> args = op_args(s.c, inputs, {"--golden", dir + "/" + name + ".safetensors"});
      args.insert(args.end(), more.begin(), more.end());
      const auto r = test::run_kvfid(args);
      EXPECT_EQ(r.exit_code, test::kExitPass) << r.err;
      return test::read_bytes(dir + "/" + name + ".safetensors");
    };
    Inputs rounded = s.c.inputs;
    for (const std::string& name : s.rounded)
      for (double& x : rounded.at(name).second) x = in_format(x, s.format);
    const std::string stored = golden(s.c.inputs, s.option, "stored");
    EXPECT_TRUE(stored == golden(rounded, {}, "rounded"));
    EXPECT_FALSE(stored == golden(s.c.inputs, {}, "plain"));
  }
}

class CmdOpRefusal : public testing::Test {
 protected:
  void expect_refusal(const std::vector<std::string>& args, const std::string& culprit, const std::string& problem) {
    const test::CliResult r = test::run_kvfid(args);
    EXPECT_EQ(r.exit_code, test::kExitBadInput) << r.err;
    const std::vector<std::string> lines = test::split_lines(r.err);
    ASSERT_EQ(lines.size(), 1u) << r.err;
    EXPECT_NE(lines[0].find(culprit), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find(problem), std::string::npos) << lines[0];
  }
  std::string dir_ = test::scratch_dir("cmd_op_refusal");
};

TEST_F(CmdOpRefusal, UnknownOp) {
  expect_refusal({"op", "conv2d", "--inputs", "x", "--golden", dir_ + "/g"}, "conv2d", "unknown op");
}

TEST_F(CmdOpRefusal, MissingInput) {
  const std::string in = write_tensors(dir_ + "/in.safetensors", {{"x", {{2, 4}, {1, 2, 3, 4, 5, 6, 7, 8}}}});
  expect_refusal({"op", "rmsnorm", "--inputs", in, "--golden", dir_ + "/g"}, in, "needs a tensor 'weight'");
}

TEST_F(CmdOpRefusal, MismatchedShapes) {
  const std::string in = write_tensors(dir_ + "/in.safetensors", {{"gate", {{3}, {1, 2, 3}}}, {"up", {{4}, {1, 2, 3, 4}}}});
  expect_refusal({"op", "swiglu", "--inputs", in, "--golden", dir_ + "/g"}, in, "differ in shape");
}

TEST_F(CmdOpRefusal, NonFiniteInput) {
  const std::string in = write_tensors(dir_ + "/in.safetensors", {{"x", {{3}, {1, NAN, 3}}}});
  expect_refusal({"op", "softmax", "--inputs", in, "--golden", dir_ + "/g"}, in, "non-finite value at index 1");
}

TEST_F(CmdOpRefusal, HeadsNotAMultipleOfKvHeads) {
  const std::string in = write_tensors(dir_ + "/in.safetensors", {{"q", {{1, 3, 2}, {1, 2, 3, 4, 5, 6}}},
                                                                   {"k", {{1, 2, 2}, {1, 2, 3, 4}}},
                                                                   {"v", {{1, 2, 2}, {1, 2, 3, 4}}}});
  expect_refusal({"op", "attention", "--inputs", in, "--golden", dir_ + "/g"}, in, "multiple of the KV heads");
}

TEST_F(CmdOpRefusal, CandidateOfTheWrongShape) {
  const std::string in = write_tensors(dir_ + "/in.safetensors", {{"x", {{3}, {1, 2, 3}}}});
  const std::string cand = write_tensors(dir_ + "/c.safetensors", {{"softmax", {{2}, {0.5, 0.5}}}});
  expect_refusal({"op", "softmax", "--inputs", in, "--candidate", cand}, cand, "does not have the output's shape [3]");
}

TEST_F(CmdOpRefusal, TruncatedInputsFile) {
  const std::string in = write_tensors(dir_ + "/in.safetensors", {{"x", {{3}, {1, 2, 3}}}});
  const std::string bytes = test::read_bytes(in);
  test::write_bytes(in, bytes.substr(0, bytes.size() - 5));
  expect_refusal({"op", "softmax", "--inputs", in, "--golden", dir_ + "/g"}, in, "");
}

}  // namespace
}  // namespace kvfid::cli
