// kvfid bitwise through the built binary, on dumps made by kvfid run --engine twin:
// chunked == one-shot prefill is IDENTICAL, so are one and three --threads against the
// default (one per hardware thread), a different KV format is not, a single
// flipped bit is found in exactly the tensor that holds it, bad paths exit 2.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "tests/common/model_files.h"
#include "tests/common/run_cli.h"
#include "tests/common/test_env.h"
#include "tests/tools/kvfid/safetensors_bytes.h"

namespace kvfid::cli {
namespace {

constexpr int kDiffer = 1;

// Twin dumps of tiny-llama over the short prompt, made once for the whole binary.
struct Dumps {
  std::string dir;
  std::string one_shot;  // --chunk 0, f32 KV
  std::string chunked;   // --chunk 3, f32 KV
  std::string f16_kv;    // --chunk 0, f16 KV
  std::string one_thread, three_threads;  // --chunk 0, f32 KV, --threads 1 and 3
};

std::string run_twin(const std::string& dir, const std::string& name, const std::vector<std::string>& extra) {
  const std::string out = dir + "/" + name + ".safetensors";
  std::vector<std::string> args = {"run",   "--model", test::fixtures_dir() + "/tiny-llama", "--prompt",
                                   test::fixtures_dir() + "/prompts/short.tokens", "--engine", "twin", "--out", out};
  args.insert(args.end(), extra.begin(), extra.end());
  const auto r = test::run_kvfid(args);
  EXPECT_EQ(r.exit_code, test::kExitPass) << r.err;
  return out;
}

const Dumps& dumps() {
  static const Dumps d = [] {
    Dumps d;
    d.dir = test::scratch_dir("cmd_bitwise");
    d.one_shot = run_twin(d.dir, "one_shot", {});
    d.chunked = run_twin(d.dir, "chunked", {"--chunk", "3"});
    d.f16_kv = run_twin(d.dir, "f16_kv", {"--kv", "f16"});
    d.one_thread = run_twin(d.dir, "one_thread", {"--threads", "1"});
    d.three_threads = run_twin(d.dir, "three_threads", {"--threads", "3"});
    return d;
  }();
  return d;
}

test::CliResult bitwise(const std::string& expected, const std::string& actual) {
  return test::run_kvfid({"bitwise", "--expected", expected, "--actual", actual});
}

// Tensor names on the "DIFFERS NAME: ..." lines.
std::vector<std::string> differing(const std::string& out) {
  std::vector<std::string> names;
  for (const std::string& line : test::split_lines(out))
    if (line.rfind("DIFFERS ", 0) == 0) names.push_back(line.substr(8, line.find(':') - 8));
  return names;
}

TEST(CmdBitwise, ChunkedAndOneShotPrefillAreIdentical) {
  const auto r = bitwise(dumps().one_shot, dumps().chunked);
  EXPECT_EQ(r.exit_code, test::kExitPass) << r.out << r.err;
  EXPECT_TRUE(differing(r.out).empty()) << r.out;
  EXPECT_NE(r.out.find("bitwise: IDENTICAL"), std::string::npos) << r.out;
}

TEST(CmdBitwise, ThreadCountsAreIdentical) {
  for (const std::string& dump : {dumps().one_thread, dumps().three_threads}) {
    const auto r = bitwise(dumps().one_shot, dump);
    EXPECT_EQ(r.exit_code, test::kExitPass) << dump << '\n' << r.out << r.err;
    EXPECT_NE(r.out.find("bitwise: IDENTICAL"), std::string::npos) << r.out;
  }
}

TEST(CmdBitwise, RunRefusesAThreadCountOutsideRange) {
  for (const std::string n : {"0", "-1", "1025", "two"}) {
    const auto r = test::run_kvfid({"run", "--model", test::fixtures_dir() + "/tiny-llama", "--tokens", "1,2", "--threads",
                                    n, "--out", dumps().dir + "/refused.safetensors"});
    EXPECT_EQ(r.exit_code, test::kExitBadInput) << n << '\n' << r.err;
    EXPECT_NE(r.err.find("--threads"), std::string::npos) << r.err;
  }
}

TEST(CmdBitwise, F16AndF32KvCachesDiffer) {
  const auto r = bitwise(dumps().one_shot, dumps().f16_kv);
  EXPECT_EQ(r.exit_code, kDiffer) << r.out << r.err;
  const std::vector<std::string> names = differing(r.out);
  // Storing K and V in f16 rounds them, so the cached k and v and all that reads them
  // (probabilities, attention output, residual, logits) change; q does not read the cache.
  for (const std::string expected : {"layers.0.k", "layers.0.v", "layers.1.out", "logits"})
    EXPECT_NE(std::find(names.begin(), names.end(), expected), names.end()) << expected << " not named in\n" << r.out;
  EXPECT_EQ(std::find(names.begin(), names.end(), "layers.0.q"), names.end()) << r.out;
  EXPECT_NE(r.out.find("bitwise: DIFFER (" + std::to_string(names.size()) + " of"), std::string::npos) << r.out;
}

TEST(CmdBitwise, OneFlippedBitIsFoundInExactlyItsTensor) {
  const std::string tensor = "layers.1.attn.out";
  constexpr std::size_t kElement = 7;
  std::string bytes = test::read_bytes(dumps().one_shot);
  const test::TensorBytes where = test::locate_tensor(bytes, tensor);
  ASSERT_EQ(where.dtype, "F32");
  ASSERT_GT(where.size, 4 * kElement);
  bytes[where.offset + 4 * kElement] ^= 0x01;  // the lowest mantissa bit
  const std::string flipped = dumps().dir + "/flipped.safetensors";
  test::write_bytes(flipped, bytes);

  const auto r = bitwise(dumps().one_shot, flipped);
  EXPECT_EQ(r.exit_code, kDiffer) << r.out << r.err;
  EXPECT_EQ(differing(r.out), std::vector<std::string>{tensor}) << r.out;
  EXPECT_NE(r.out.find("flat index " + std::to_string(kElement)), std::string::npos) << r.out;
}

TEST(CmdBitwise, MissingFileExitsTwoNamingIt) {
  const std::string missing = dumps().dir + "/absent.safetensors";
  for (const auto& [expected, actual] : {std::pair{missing, dumps().one_shot}, std::pair{dumps().one_shot, missing}}) {
    const auto r = bitwise(expected, actual);
    EXPECT_EQ(r.exit_code, test::kExitBadInput) << r.out << r.err;
    const std::vector<std::string> lines = test::split_lines(r.err);
    ASSERT_EQ(lines.size(), 1u) << r.err;
    EXPECT_NE(lines[0].find(missing), std::string::npos) << lines[0];
  }
}

}  // namespace
}  // namespace kvfid::cli
