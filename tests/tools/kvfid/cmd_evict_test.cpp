// kvfid evict: the per-layer account and its JSON steps; bad policies and token sources
// refused with exit 2.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/common/model_files.h"
#include "tests/common/run_cli.h"
#include "tests/common/test_env.h"

namespace kvfid::cli {
namespace {

TEST(CmdEvict, EveryStepIsWithinItsBoundAndWritten) {
  const std::string dir = test::scratch_dir("cmd_evict");
  const std::string model = test::fixtures_dir() + "/tiny-qwen2";
  const auto r = test::run_kvfid({"evict", "--model", model, "--prompt", test::fixtures_dir() + "/prompts/medium.tokens",
                                  "--policy", "streaming:2,8", "--json", dir + "/e.json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("bound 2 m max|v| on every step: holds"), std::string::npos) << r.out;
  const nlohmann::json j = nlohmann::json::parse(test::read_bytes(dir + "/e.json"));
  EXPECT_TRUE(j.at("bound_holds").get<bool>());
  const auto& steps = j.at("steps");
  ASSERT_EQ(steps.size(), std::size_t(2 * 7 * 64));  // layers x query heads x positions
  int evicting = 0;
  for (const auto& s : steps) {  // [layer, head, position, mass, observed, bound]
    const int position = s[2];
    const double mass = s[3], observed = s[4], bound = s[5];
    EXPECT_EQ(mass > 0, position >= 10) << s.dump();
    EXPECT_LE(observed, bound) << s.dump();
    evicting += mass > 0;
  }
  EXPECT_EQ(evicting, 2 * 7 * 54);
  EXPECT_EQ(j.at("kl_per_position").size(), 64u);
  double kl_sum = 0;
  for (double kl : j.at("kl_per_position")) kl_sum += kl;
  EXPECT_GT(kl_sum, 0.0);
  // A window of the whole prompt evicts nothing: no mass, and the same next-token
  // distributions (KL exactly 0, no top token changed).
  const auto all = test::run_kvfid({"evict", "--model", model, "--prompt", test::fixtures_dir() + "/prompts/medium.tokens",
                                    "--policy", "streaming:0,64", "--json", dir + "/all.json"});
  ASSERT_EQ(all.exit_code, 0) << all.out << all.err;
  const nlohmann::json a = nlohmann::json::parse(test::read_bytes(dir + "/all.json"));
  for (double kl : a.at("kl_per_position")) EXPECT_EQ(kl, 0.0);
  EXPECT_EQ(a.at("top1_changed"), 0);
  for (const auto& s : a.at("steps")) EXPECT_EQ(double(s[3]), 0.0);
}

TEST(CmdEvict, BadPoliciesAndTokenSourcesExitTwo) {
  const std::string model = test::fixtures_dir() + "/tiny-llama";
  for (const char* policy : {"h2o:16", "streaming:2", "streaming:2,0"}) {
    const auto r = test::run_kvfid({"evict", "--model", model, "--tokens", "1,2,3", "--policy", policy});
    EXPECT_EQ(r.exit_code, 2) << policy << "\n" << r.err;
    EXPECT_NE(r.err.find("--policy"), std::string::npos) << r.err;
  }
  EXPECT_EQ(test::run_kvfid({"evict", "--model", model, "--policy", "streaming:1,2"}).exit_code, 2);
  EXPECT_EQ(test::run_kvfid({"evict", "--model", model, "--tokens", "1,-2", "--policy", "streaming:1,2"}).exit_code, 2);
}

}  // namespace
}  // namespace kvfid::cli
