// kvfid check --engine twin against every committed golden short enough to run in CI,
// with weights and KV cache both stored in each of f32, f16 and bf16: the engine's
// CPU twin must pass the fidelity gate (exit 0) on all of them; latent attention's by both
// of its decode paths.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "reference/golden/golden_io.h"
#include "tests/common/run_cli.h"
#include "tests/common/generated_fixtures.h"
#include "tests/common/test_env.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the specification's names: the layer below
namespace {

namespace fs = std::filesystem;

// Goldens over more tokens (the 256- and 512-token ones) are left to the GPU script;
// at most 128 keeps this whole file to tens of seconds on 2 cores.
constexpr std::size_t kMaxTokens = 128;

struct GoldenCase {
  std::string dir;    // relative to golden/
  std::string model;  // the manifest's model, relative to the project root
};

nlohmann::json read_manifest(const fs::path& dir) {
  std::ifstream in(dir / kGoldenManifestFile);
  return nlohmann::json::parse(in);
}

std::vector<std::string> short_goldens() {
  std::vector<std::string> out;
  if (!fs::is_directory(test::golden_dir())) return out;
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(test::golden_dir())) {
    if (!entry.is_directory() || !fs::exists(entry.path() / kGoldenManifestFile)) continue;
    if (read_manifest(entry.path()).at("tokens").size() <= kMaxTokens)
      out.push_back(fs::relative(entry.path(), test::golden_dir()).generic_string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

class CheckAllGoldens : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(CheckAllGoldens, TwinPasses) {
  const auto& [golden, format] = GetParam();
  const fs::path dir = fs::path(test::golden_dir()) / golden;
  const nlohmann::json manifest = read_manifest(dir);
  const std::string model_rel = manifest.at("model").get<std::string>();
  const fs::path model = test::ensure_model(model_rel);
  if (!fs::exists(model)) {
    // Only the shared real model may be absent (a fresh clone has no ../shared).
    ASSERT_EQ(model_rel.rfind("../shared/", 0), 0u) << model << " missing";
    GTEST_SKIP() << test::kStoriesMissing;
  }
  const bool latent = manifest.at("config").contains("latent_attention");
  for (const char* path : {"reconstruct", "absorb"}) {
    if (!latent && std::string(path) == "absorb") break;  // --mla means nothing to other models
    const auto r = test::run_kvfid({"check", "--model", model.string(), "--golden", dir.string(), "--engine", "twin",
                                    "--weights", format, "--kv", format, "--mla", path});
    EXPECT_EQ(r.exit_code, 0) << golden << " --weights " << format << " --kv " << format << " --mla " << path << "\n"
                              << r.out << r.err;
  }
}

INSTANTIATE_TEST_SUITE_P(Committed, CheckAllGoldens,
                         ::testing::Combine(::testing::ValuesIn(short_goldens()),
                                            ::testing::Values("f32", "f16", "bf16")),
                         [](const auto& info) {
                           return test::param_name(std::get<0>(info.param) + "_" + std::get<1>(info.param));
                         });

// The list comes from the committed golden/ tree; an empty list would make the
// parameterized test vanish silently.
TEST(CheckAllGoldensList, FindsTheFixtureGoldens) {
  const std::vector<std::string> found = short_goldens();
  for (const char* expected : {"tiny-llama/short", "tiny-mqa/medium", "tiny-qwen2/short", "tiny-llama3/short", "tiny-qwen3/short", "tiny-mistral/short", "tiny-gemma2/short", "tiny-mla/short",
                               "qwen2.5-0.5b-l1-v256/short",
                               "qwen2.5-7b-l1-v256/short-2", "qwen3-0.6b-l1-v256/short",
                               "llama-3.2-1b-l1-v256/short"})
    EXPECT_NE(std::find(found.begin(), found.end(), expected), found.end()) << expected;
}

}  // namespace
}  // namespace kvfid::cli
