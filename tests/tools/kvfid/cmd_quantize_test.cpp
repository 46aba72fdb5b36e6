// kvfid quantize: float32 -> blocks -> float32 for every format, Q8_0 bytes checked by
// hand, and every refusal (exit 2, one line naming the file or flag, nothing written).
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>

#include <gtest/gtest.h>

#include "reference/formats/quant/registry.h"
#include "tests/common/model_files.h"
#include "tests/common/run_cli.h"
#include "tests/common/test_env.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the specification's names: the layer below
namespace {
namespace fs = std::filesystem;


std::string float_bytes(const std::vector<float>& x) {
  std::string s;
  for (float v : x) {
    std::uint32_t u;
    std::memcpy(&u, &v, 4);
    for (int b = 0; b < 4; ++b) s.push_back(char((u >> (8 * b)) & 0xFFu));
  }
  return s;
}

std::vector<float> floats_of(const std::string& s) {
  std::vector<float> x(s.size() / 4);
  for (std::size_t i = 0; i < x.size(); ++i) {
    std::uint32_t u = 0;
    for (int b = 0; b < 4; ++b) u |= std::uint32_t(static_cast<unsigned char>(s[4 * i + b])) << (8 * b);
    std::memcpy(&x[i], &u, 4);
  }
  return x;
}

void expect_refusal(const test::CliResult& r, const std::string& names, const std::string& out) {
  EXPECT_EQ(r.exit_code, test::kExitBadInput) << r.err;
  const auto lines = test::split_lines(r.err);
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_NE(lines[0].find(names), std::string::npos) << "'" << names << "' not in: " << lines[0];
  EXPECT_FALSE(fs::exists(out)) << "an output was written";
  EXPECT_EQ(r.out, "");
}

// Every format: 4 blocks of seeded normal values (spread over a few magnitudes), out
// to blocks of the declared size, back to float32 values within the format's bound.
TEST(CmdQuantize, RoundTripsEveryFormatWithinItsBound) {
  SCOPED_TRACE(test::seed_trace());
  const std::string dir = test::scratch_dir("quantize_round_trip");
  std::mt19937_64 rng(test::test_seed());
  std::normal_distribution<float> normal;
  for (const quant::FormatInfo& f : quant::all_formats()) {
    SCOPED_TRACE(f.name);
    std::vector<float> x(4 * std::max(f.block, 16));  // [values], whole blocks
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = normal(rng) * float(1 << (i % 5));
    test::write_bytes(dir + "/in.f32", float_bytes(x));
    const std::string blocks = dir + "/" + f.name + ".bin", back = dir + "/" + f.name + ".f32";
    auto r = test::run_kvfid({"quantize", "--format", f.name, "--in", dir + "/in.f32", "--out", blocks, "--scale", "0.25"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string bytes = test::read_bytes(blocks);
    ASSERT_EQ(bytes.size(), x.size() / f.block * f.bytes);
    r = test::run_kvfid({"quantize", "--format", f.name, "--in", blocks, "--out", back, "--decode", "--scale", "0.25"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto y = floats_of(test::read_bytes(back));
    ASSERT_EQ(y.size(), x.size());
    const quant::CodecParams p{0.25f};
    for (std::size_t i = 0; i < x.size(); ++i) {
      const std::size_t start = i / f.block * f.block;
      const auto* block = reinterpret_cast<const std::uint8_t*>(bytes.data()) + start / f.block * f.bytes;
      ASSERT_EQ(y[i], float(f.decode_exact(block, int(i - start), p))) << "value " << i;
      // The float32 rounding of the exact value adds at most half an FP32 ulp of it.
      const double fp32_rounding = std::ldexp(std::fabs(double(y[i])), -24);
      ASSERT_LE(std::fabs(double(x[i]) - y[i]), f.error_bound(x.data() + start, int(i - start), p) + fp32_rounding)
          << "value " << i;
    }
  }
}

// The Q8_0 block of ggml_bytes_test.cpp's ties: amax = 127, so d = 1 (fp16 3C00) and
// x * id = x: 127 -> 7F, 0.5 -> 01, -0.5 -> FF, 1.5 -> 02, 2.5 -> 03, -2.5 -> FD, the
// 26 zeros -> 00. Decoding gives 127, 1, -1, 2, 3, -3 and zeros.
TEST(CmdQuantize, Q8_0BytesAreGgmls) {
  const std::string dir = test::scratch_dir("quantize_q8_0");
  std::vector<float> x(32, 0.0f);
  const float values[] = {127.0f, 0.5f, -0.5f, 1.5f, 2.5f, -2.5f};
  std::copy(std::begin(values), std::end(values), x.begin());
  test::write_bytes(dir + "/x.f32", float_bytes(x));
  ASSERT_EQ(test::run_kvfid({"quantize", "--format", "q8_0", "--in", dir + "/x.f32", "--out", dir + "/x.q8"}).exit_code, 0);
  std::string expected(34, '\0');
  const unsigned char head[] = {0x00, 0x3C, 0x7F, 0x01, 0xFF, 0x02, 0x03, 0xFD};
  std::copy(std::begin(head), std::end(head), expected.begin());
  EXPECT_EQ(test::read_bytes(dir + "/x.q8"), expected);
  ASSERT_EQ(test::run_kvfid({"quantize", "--format", "q8_0", "--in", dir + "/x.q8", "--out", dir + "/y.f32", "--decode"})
                .exit_code,
            0);
  std::vector<float> decoded(32, 0.0f);
  const float expected_values[] = {127.0f, 1.0f, -1.0f, 2.0f, 3.0f, -3.0f};
  std::copy(std::begin(expected_values), std::end(expected_values), decoded.begin());
  EXPECT_EQ(floats_of(test::read_bytes(dir + "/y.f32")), decoded);
}

class CmdQuantizeRefusal : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::scratch_dir("quantize_refusal");
    out_ = dir_ + "/out.bin";
  }
  std::string input(const std::string& name, const std::string& bytes) const {
    test::write_bytes(dir_ + "/" + name, bytes);
    return dir_ + "/" + name;
  }
  std::string dir_, out_;
};

TEST_F(CmdQuantizeRefusal, ValueCountNotAWholeNumberOfBlocks) {
  const std::string in = input("x.f32", float_bytes(std::vector<float>(33, 1.0f)));
  const auto r = test::run_kvfid({"quantize", "--format", "q8_0", "--in", in, "--out", out_});
  expect_refusal(r, in, out_);
  EXPECT_NE(r.err.find("block of 32"), std::string::npos) << r.err;
}

TEST_F(CmdQuantizeRefusal, SizeNotAWholeNumberOfFloats) {
  const std::string in = input("x.f32", std::string(7, '\0'));
  expect_refusal(test::run_kvfid({"quantize", "--format", "f16", "--in", in, "--out", out_}), in, out_);
}

TEST_F(CmdQuantizeRefusal, NonFiniteValuesNamedByIndex) {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity()}) {
    std::vector<float> x(32, 1.0f);
    x[5] = bad;
    const std::string in = input("x.f32", float_bytes(x));
    const auto r = test::run_kvfid({"quantize", "--format", "int8_32", "--in", in, "--out", out_});
    expect_refusal(r, in, out_);
    EXPECT_NE(r.err.find("value 5"), std::string::npos) << r.err;
  }
}

// Finite values a format cannot hold (found by tests/fuzz's quantize target): f16 above
// 65504 rounds to infinity; q8_0's FP16 scale amax / 127 overflows past 127 * 65504;
// int4a_32's FP16 step (max - min) / 15 past 15 * 65504. Each was written as blocks
// that decode to infinity or NaN; now refused with the block's values named.
TEST_F(CmdQuantizeRefusal, FiniteValuesBeyondTheFormatsRange) {
  for (const auto& [format, big] : {std::pair<std::string, float>{"f16", 1e5f}, {"q8_0", 1e7f}, {"int4a_32", 1e6f}}) {
    SCOPED_TRACE(format);
    std::vector<float> x(64, 0.5f);  // two blocks of 32, one for f16's block of 1
    x[37] = big;
    x[40] = -big;
    const std::string in = input("x.f32", float_bytes(x));
    const auto r = test::run_kvfid({"quantize", "--format", format, "--in", in, "--out", out_});
    expect_refusal(r, in, out_);
    EXPECT_NE(r.err.find("exceed what " + format + " can hold"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(format == "f16" ? "value 37 " : "values 32 to 63"), std::string::npos) << r.err;
  }
}

TEST_F(CmdQuantizeRefusal, UnknownFormatListsTheKnownOnes) {
  const std::string in = input("x.f32", float_bytes(std::vector<float>(32, 1.0f)));
  const auto r = test::run_kvfid({"quantize", "--format", "q3_k", "--in", in, "--out", out_});
  expect_refusal(r, "--format", out_);
  EXPECT_NE(r.err.find("q4_0"), std::string::npos) << r.err;
}

TEST_F(CmdQuantizeRefusal, MissingInputFile) {
  const std::string in = dir_ + "/absent.f32";
  expect_refusal(test::run_kvfid({"quantize", "--format", "q8_0", "--in", in, "--out", out_}), in, out_);
}

TEST_F(CmdQuantizeRefusal, InputThatIsAFolder) {
  expect_refusal(test::run_kvfid({"quantize", "--format", "q8_0", "--in", dir_, "--out", out_}), dir_, out_);
}

TEST_F(CmdQuantizeRefusal, DecodeOfPartialBlocks) {
  const std::string in = input("x.q4", std::string(19, '\0'));  // one 18-byte block and a byte
  const auto r = test::run_kvfid({"quantize", "--format", "q4_0", "--in", in, "--out", out_, "--decode"});
  expect_refusal(r, in, out_);
  EXPECT_NE(r.err.find("18 bytes"), std::string::npos) << r.err;
}

TEST_F(CmdQuantizeRefusal, ScaleThatIsNotPositive) {
  const std::string in = input("x.f32", float_bytes({1.0f}));
  for (const char* scale : {"0", "-1", "1e39"})
    expect_refusal(test::run_kvfid({"quantize", "--format", "fp8_e4m3", "--in", in, "--out", out_, "--scale", scale}),
                   "--scale", out_);
}

TEST_F(CmdQuantizeRefusal, OutputFolderMissing) {
  const std::string in = input("x.f32", float_bytes({1.0f}));
  const std::string out = dir_ + "/no/such/folder/out.bin";
  expect_refusal(test::run_kvfid({"quantize", "--format", "f16", "--in", in, "--out", out}), out, out);
}

}  // namespace
}  // namespace kvfid::cli
