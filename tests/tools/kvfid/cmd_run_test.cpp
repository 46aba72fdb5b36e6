// kvfid run end to end on the real stories260K model: the dump holds the golden's tap
// names and shapes plus the engine's logprobs, chunking leaves every value unchanged (and
// changes the logits past 32 keys under --split by-length), bad input exits 2 and
// writes nothing.
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include <gtest/gtest.h>

#include "reference/golden/taps.h"
#include "reference/io/safetensors.h"
#include "tests/common/test_env.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the specification's names: the layer below
namespace {

int run_kvfid(const std::string& args) {
  const std::string cmd = test::kvfid_binary() + " " + args + " >/dev/null 2>&1";
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(CmdRun, DumpsGoldenTapsAndChunkingChangesNoBit) {
  const auto model = test::stories260k_path();
  if (!model) GTEST_SKIP() << test::kStoriesMissing;
  const std::string dir = test::scratch_dir("cmd_run");
  const std::string tokens = "--tokens 1,403,407,261,134,300,17,42,9,300,5";
  ASSERT_EQ(run_kvfid("run --model " + *model + " " + tokens + " --engine twin --out " + dir + "/whole.safetensors"), 0);
  ASSERT_EQ(run_kvfid("run --model " + *model + " " + tokens + " --chunk 3 --kv f32 --out " + dir + "/chunked.safetensors"), 0);
  const SafetensorsFile whole = read_safetensors(dir + "/whole.safetensors");
  const SafetensorsFile chunked = read_safetensors(dir + "/chunked.safetensors");
  ModelConfig c;  // stories260K's shape (../shared/models/README.md)
  c.vocab = 512, c.dim = 64, c.n_layers = 5, c.n_heads = 8, c.n_kv_heads = 4, c.head_dim = 8;
  std::vector<TapSpec> specs = tap_specs(c, 11, TapSelection::all);
  specs.push_back({"logprobs", {11, c.vocab}});  // the engine's own tap (cuda/engine/engine_forward.h)
  ASSERT_EQ(whole.tensors.size(), specs.size());
  for (const TapSpec& s : specs) {
    ASSERT_TRUE(whole.has(s.name)) << s.name;
    EXPECT_EQ(whole.get(s.name).dtype, DType::F32);
    EXPECT_EQ(whole.get(s.name).shape, s.shape) << s.name;
    EXPECT_EQ(whole.get(s.name).bytes, chunked.get(s.name).bytes) << s.name;
  }
}

// 40 tokens decoded one by one: stories260K's 4 KV heads give a one-row step 4 blocks,
// so --split by-length cuts contexts past 32 keys into 32-key splits (cuda/engine/
// split_keys.h) where the invariant mode keeps one: rows 0..31 the same bits, some later
// row not.
TEST(CmdRun, ByLengthSplitChangesDecodeRowsPast32Keys) {
  const auto model = test::stories260k_path();
  if (!model) GTEST_SKIP() << test::kStoriesMissing;
  const std::string dir = test::scratch_dir("cmd_run_split");
  std::string tokens = "--tokens 1";
  for (int i = 1; i < 40; ++i) tokens += "," + std::to_string((37 * i) % 500 + 2);
  const std::string common = "run --model " + *model + " " + tokens + " --chunk 1 --taps logits";
  ASSERT_EQ(run_kvfid(common + " --out " + dir + "/invariant.safetensors"), 0);
  ASSERT_EQ(run_kvfid(common + " --split by-length --out " + dir + "/by_length.safetensors"), 0);
  const SafetensorsFile invariant = read_safetensors(dir + "/invariant.safetensors");
  const SafetensorsFile by_length = read_safetensors(dir + "/by_length.safetensors");
  EXPECT_EQ(invariant.metadata.at("split"), "invariant");
  EXPECT_EQ(by_length.metadata.at("split"), "by-length");
  const std::vector<std::uint8_t>& a = invariant.get("logits").bytes;  // [40, 512] F32
  const std::vector<std::uint8_t>& b = by_length.get("logits").bytes;
  ASSERT_EQ(a.size(), std::size_t(40 * 512 * 4));
  ASSERT_EQ(b.size(), a.size());
  const std::size_t row = 512 * 4;
  EXPECT_TRUE(std::equal(a.begin(), a.begin() + 32 * row, b.begin())) << "rows of at most 32 keys are one split in both";
  EXPECT_FALSE(std::equal(a.begin() + 32 * row, a.end(), b.begin() + 32 * row)) << "by-length changed no bit";
}

TEST(CmdRun, BadInputExitsTwoAndWritesNothing) {
  const auto model = test::stories260k_path();
  if (!model) GTEST_SKIP() << test::kStoriesMissing;
  const std::string dir = test::scratch_dir("cmd_run_bad");
  const std::string out = " --out " + dir + "/x.safetensors";
  EXPECT_EQ(run_kvfid("run --model " + *model + " --tokens 1,2" + " --engine gpu" + out), 2);
  EXPECT_EQ(run_kvfid("run --model " + *model + " --tokens 1,99999" + out), 2);
  EXPECT_EQ(run_kvfid("run --model " + *model + " --tokens 1,2 --chunk -1" + out), 2);
  EXPECT_EQ(run_kvfid("run --model " + *model + " --tokens 1,2 --kv q4" + out), 2);
  EXPECT_EQ(run_kvfid("run --model " + *model + " --tokens 1,2 --split by_length" + out), 2);
  EXPECT_EQ(run_kvfid("run --model " + *model + out), 2);
  EXPECT_EQ(run_kvfid("run --model " + dir + "/missing.bin --tokens 1" + out), 2);
  EXPECT_FALSE(std::filesystem::exists(dir + "/x.safetensors"));
}

// --generate on the committed tiny-qwen2 fixture: the tokens come back as I32
// [N] with the canonical sampling spec, the same for the same spec (whatever the
// chunking), and greedy's first token is the argmax of the prompt's last logits row.
TEST(CmdRun, GenerateWritesSampledTokens) {
  const std::string dir = test::scratch_dir("cmd_run_generate");
  const std::string common = "run --model fixtures/tiny-qwen2 --tokens 3,17,100,42,7 --taps logits --generate 6";
  ASSERT_EQ(run_kvfid(common + " --sample temperature=0.8,top_k=40,top_p=0.95,seed=9 --out " + dir + "/a.safetensors"), 0);
  ASSERT_EQ(run_kvfid(common + " --chunk 2 --sample seed=9,top_p=0.95,top_k=40,temperature=0.8 --out " + dir +
                      "/b.safetensors"), 0);
  ASSERT_EQ(run_kvfid(common + " --out " + dir + "/greedy.safetensors"), 0);
  const SafetensorsFile a = read_safetensors(dir + "/a.safetensors");
  const SafetensorsFile b = read_safetensors(dir + "/b.safetensors");
  const SafetensorsFile greedy = read_safetensors(dir + "/greedy.safetensors");
  ASSERT_TRUE(a.has("generated"));
  EXPECT_EQ(a.get("generated").dtype, DType::I32);
  EXPECT_EQ(a.get("generated").shape, std::vector<std::int64_t>{6});
  EXPECT_EQ(a.get("generated").bytes, b.get("generated").bytes);
  EXPECT_EQ(a.metadata.at("sample"), "temperature=0.800000012,top_k=40,top_p=0.949999988,seed=9");
  EXPECT_EQ(greedy.metadata.at("sample"), "temperature=0,top_k=0,top_p=1,seed=0");
  const std::vector<double> logits = tensor_values(greedy.get("logits"), "logits");  // [5, vocab]
  const std::size_t vocab = logits.size() / 5;
  const auto last = logits.begin() + std::ptrdiff_t(4 * vocab);
  const int argmax = int(std::max_element(last, last + std::ptrdiff_t(vocab)) - last);  // first of the largest
  const std::vector<std::uint8_t>& g = greedy.get("generated").bytes;
  EXPECT_EQ(int(g[0] | g[1] << 8 | g[2] << 16 | g[3] << 24), argmax);
}

TEST(CmdRun, BadSamplingExitsTwoAndWritesNothing) {
  const std::string dir = test::scratch_dir("cmd_run_bad_sample");
  const std::string common = "run --model fixtures/tiny-qwen2 --tokens 3,17 --out " + dir + "/x.safetensors";
  EXPECT_EQ(run_kvfid(common + " --sample temperature=1"), 2);  // without --generate
  for (const char* spec : {"temperature=-1", "top_p=0", "top_p=1.5", "top_k=-3", "seed=x", "tempo=1", "seed=1,seed=2",
                           "temperature", "temperature=nan"})
    EXPECT_EQ(run_kvfid(common + " --generate 2 --sample " + spec), 2) << spec;
  EXPECT_EQ(run_kvfid(common + " --generate -1"), 2);
  EXPECT_FALSE(std::filesystem::exists(dir + "/x.safetensors"));
}

}  // namespace
}  // namespace kvfid::cli
