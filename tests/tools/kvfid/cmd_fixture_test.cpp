// The committed fixtures are exactly what `kvfid fixture` writes today: a change to the
// generator or the HF writer cannot silently leave fixtures/ (and every golden made
// from it) describing a model the code no longer produces.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/common/run_cli.h"
#include "tests/common/test_env.h"

namespace kvfid::cli {
namespace {

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct FixtureCase {
  std::string shape;
  std::string seed;
  std::string dtype;
};

// The commands recorded in fixtures/README.md.
const FixtureCase kCommitted[] = {
    {"tiny-llama", "1", "f32"},
    {"tiny-qwen2", "2", "bf16"},
    {"tiny-mqa", "3", "f16"},
    {"tiny-llama3", "4", "bf16"},
    {"tiny-qwen3", "5", "bf16"},
    {"tiny-mistral", "6", "f16"},
    {"tiny-gemma2", "7", "bf16"},
    {"tiny-mla", "11", "bf16"},
};

TEST(CmdFixture, RegeneratesCommittedFixturesByteForByte) {
  for (const auto& c : kCommitted) {
    SCOPED_TRACE(c.shape);
    const std::string out = test::scratch_dir("fixture_" + c.shape) + "/model";
    auto r = test::run_kvfid({"fixture", "--shape", c.shape, "--seed", c.seed, "--dtype", c.dtype, "--out", out});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string committed = test::fixtures_dir() + "/" + c.shape;
    for (const char* file : {"config.json", "model.safetensors"}) {
      const std::string expected = file_bytes(committed + "/" + file);
      ASSERT_FALSE(expected.empty()) << committed << "/" << file << " is missing";
      EXPECT_TRUE(file_bytes(out + "/" + file) == expected) << file << " differs from " << committed;
    }
  }
}

// A reduced real shape: the public config cut to one layer and 128 ids, BF16 by
// default, the same bytes for one thread or two.
TEST(CmdFixture, ReducedRealShapeIsThreadCountIndependent) {
  const std::string dir = test::scratch_dir("fixture_reduced");
  for (const char* threads : {"1", "2"}) {
    auto r = test::run_kvfid({"fixture", "--shape", "qwen2.5-0.5b", "--layers", "1", "--vocab", "128", "--seed", "4",
                              "--threads", threads, "--out", dir + "/t" + threads});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  EXPECT_TRUE(file_bytes(dir + "/t1/model.safetensors") == file_bytes(dir + "/t2/model.safetensors"));
  const std::string config = file_bytes(dir + "/t1/config.json");
  for (const char* fact : {"\"num_hidden_layers\": 1,", "\"vocab_size\": 128", "\"hidden_size\": 896,",
                           "\"num_key_value_heads\": 2,", "\"torch_dtype\": \"bfloat16\"", "\"tie_word_embeddings\": true"})
    EXPECT_NE(config.find(fact), std::string::npos) << fact << " not in " << config;
}

TEST(CmdFixture, ReductionsOutsideTheShapeAreBadInput) {
  const std::string out = test::scratch_dir("fixture_bad_reduction") + "/m";
  struct Bad {
    std::vector<std::string> args;
    const char* flag;
  };
  for (const Bad& b : {Bad{{"--layers", "0"}, "--layers"}, Bad{{"--layers", "25"}, "--layers"},
                       Bad{{"--vocab", "127"}, "--vocab"}, Bad{{"--vocab", "151937"}, "--vocab"}}) {
    std::vector<std::string> argv = {"fixture", "--shape", "qwen2.5-0.5b", "--seed", "1", "--out", out};
    argv.insert(argv.end(), b.args.begin(), b.args.end());
    auto r = test::run_kvfid(argv);
    EXPECT_EQ(r.exit_code, 2) << b.args[0] << " " << b.args[1];
    EXPECT_NE(r.err.find(b.flag), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(out));
  }
}

TEST(CmdFixture, UnknownShapeIsBadInput) {
  auto r = test::run_kvfid({"fixture", "--shape", "huge", "--seed", "1", "--out", test::scratch_dir("fx_bad") + "/m"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown shape 'huge'"), std::string::npos) << r.err;
}

// SIGTERM while a big model is being written: the staging folder beside the output is
// removed, one line says so, the process ends by that signal, and nothing is left.
TEST(CmdFixture, TerminatedWriteLeavesNothing) {
  namespace fs = std::filesystem;
  const fs::path scratch = test::scratch_dir("cmd_fixture_sigterm");
  const fs::path out = scratch / "model";
  const test::StartedCommand run = test::start_command({test::kvfid_binary(), "fixture", "--shape", "qwen2.5-0.5b",
                                                        "--layers", "2", "--seed", "3", "--threads", "1", "--out",
                                                        out.string()});
  const fs::path staging = out.string() + ".tmp." + std::to_string(run.pid);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(staging) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const bool staged = fs::exists(staging);
  ::kill(run.pid, SIGTERM);
  const test::MeasuredRun r = test::wait_command(run);
  ASSERT_TRUE(staged) << "no staging folder appeared: " << r.err;
  EXPECT_EQ(r.exit_code, 128 + SIGTERM) << r.err;
  const std::vector<std::string> lines = test::split_lines(r.err);  // the model's summary, then this
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back(), "kvfid fixture: interrupted by SIGTERM; nothing was written") << r.err;
  EXPECT_FALSE(fs::exists(staging));
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace kvfid::cli
