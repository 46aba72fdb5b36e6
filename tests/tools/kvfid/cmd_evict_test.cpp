// kvfid evict: the per-layer account and its JSON steps, one policy or several sharing
// the full forward; the window policy of a windowed model; bad policies and token
// sources refused with exit 2.
#include <algorithm>

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
  ASSERT_EQ(j.at("policies").size(), 1u);
  const nlohmann::json& p = j.at("policies")[0];
  EXPECT_EQ(p.at("policy"), "streaming:2,8");
  EXPECT_EQ(p.at("budget_tokens"), 9);
  const auto& steps = p.at("steps");
  ASSERT_EQ(steps.size(), std::size_t(2 * 7 * 64));  // layers x query heads x positions
  int evicting = 0;
  for (const auto& s : steps) {  // [layer, head, position, mass, observed, bound, kept]
    const int position = s[2], kept = s[6];
    const double mass = s[3], observed = s[4], bound = s[5];
    EXPECT_EQ(mass > 0, position >= 10) << s.dump();
    EXPECT_EQ(kept, std::min(position + 1, 10)) << s.dump();
    EXPECT_LE(observed, bound) << s.dump();
    evicting += mass > 0;
  }
  EXPECT_EQ(evicting, 2 * 7 * 54);
  EXPECT_EQ(p.at("kl_per_position").size(), 64u);
  double kl_sum = 0;
  for (double kl : p.at("kl_per_position")) kl_sum += kl;
  EXPECT_GT(kl_sum, 0.0);
  EXPECT_EQ(p.at("kl_last"), p.at("kl_per_position")[63]);
  EXPECT_LT(p.at("output_deviation").get<double>(), 1e-30);
  // A window of the whole prompt evicts nothing: no mass, and the same next-token
  // distributions (KL exactly 0, no top token changed).
  const auto all = test::run_kvfid({"evict", "--model", model, "--prompt", test::fixtures_dir() + "/prompts/medium.tokens",
                                    "--policy", "streaming:0,64", "--json", dir + "/all.json"});
  ASSERT_EQ(all.exit_code, 0) << all.out << all.err;
  const nlohmann::json a = nlohmann::json::parse(test::read_bytes(dir + "/all.json")).at("policies")[0];
  for (double kl : a.at("kl_per_position")) EXPECT_EQ(kl, 0.0);
  EXPECT_EQ(a.at("top1_changed"), 0);
  EXPECT_EQ(a.at("kept_fraction"), 1.0);
  for (const auto& s : a.at("steps")) EXPECT_EQ(double(s[3]), 0.0);
}

// Several policies over one full forward: one table each, then the comparison; every
// score-based policy within its bound and its budget.
TEST(CmdEvict, SeveralPoliciesShareTheFullForward) {
  const std::string dir = test::scratch_dir("cmd_evict_several");
  const auto r = test::run_kvfid({"evict", "--model", test::fixtures_dir() + "/tiny-llama", "--tokens",
                                  "1,7,3,9,2,8,4,6,5,10,11,12,13,14,15,16", "--policy",
                                  "h2o:25%,tova:4,knorm:4,snapkv:4,2,3", "--json", dir + "/s.json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  for (const char* line : {"h2o:25% (4 past keys at most) over 16 tokens: ", "snapkv:4,2,3 (4 past keys at most)",
                           "KL at the last position", "policy                  budget"})
    EXPECT_NE(r.out.find(line), std::string::npos) << line << "\n" << r.out;
  const nlohmann::json j = nlohmann::json::parse(test::read_bytes(dir + "/s.json"));
  ASSERT_EQ(j.at("policies").size(), 4u);
  for (const auto& p : j.at("policies")) {
    EXPECT_TRUE(p.at("bound_holds").get<bool>()) << p.at("policy");
    EXPECT_EQ(p.at("budget_tokens"), 4);
    EXPECT_GT(p.at("max_mass").get<double>(), 0.0);
    EXPECT_LE(p.at("max_ratio").get<double>(), 1.0);
    EXPECT_NEAR(p.at("kept_fraction").get<double>(), (1 + 2 + 3 + 4 + 5 * 12) / 136.0, 1e-12) << p.at("policy");
    for (const auto& s : p.at("steps")) EXPECT_LE(int(s[6]), 5);
    // 11 evictions per KV head and layer (after queries 4..14), 4 KV heads, 2 layers.
    EXPECT_EQ(p.at("evicted").size(), std::size_t(11 * 4 * 2)) << p.at("policy");
    // Every policy here scores its keys: the closest decision's margin, never negative
    // (a kept score below an evicted one would be a broken rule).
    ASSERT_TRUE(p.at("margin_min").is_number()) << p.at("policy");
    EXPECT_GE(p.at("margin_min").get<double>(), 0.0) << p.at("policy");
  }
  EXPECT_NE(r.out.find("closest decision to a tie: margin "), std::string::npos) << r.out;
}

// A policy with per-layer budgets ('/'-joined) must give one for each layer.
TEST(CmdEvict, PerLayerBudgetsMatchTheLayerCount) {
  const std::string model = test::fixtures_dir() + "/tiny-llama";  // 2 layers
  const auto ok = test::run_kvfid({"evict", "--model", model, "--tokens", "1,7,3,9,2,8,4,6,5,10", "--policy", "h2o:2/5"});
  ASSERT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_NE(ok.out.find("h2o:2/5 (5 past keys at most)"), std::string::npos) << ok.out;
  const auto bad = test::run_kvfid({"evict", "--model", model, "--tokens", "1,7,3", "--policy", "h2o:2/5/7"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("gives 3 per-layer budgets for a model of 2 layers"), std::string::npos) << bad.err;
}

// On a model with its own sliding window the window policy is the one taken: it keeps
// each windowed layer's window, so no query misses any mass and the outputs are the
// model's; any other policy there, and window on a model without one, exit 2.
TEST(CmdEvict, TheWindowPolicyOfAWindowedModelMissesNothing) {
  const std::string dir = test::scratch_dir("cmd_evict_window");
  const std::string gemma = test::fixtures_dir() + "/tiny-gemma2";  // window 5 on layer 0, layer 1 global
  const std::string tokens = "1,7,3,9,2,8,4,6,5,10,11,12";
  const auto r = test::run_kvfid({"evict", "--model", gemma, "--tokens", tokens, "--policy", "window", "--json", dir + "/w.json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const nlohmann::json j = nlohmann::json::parse(test::read_bytes(dir + "/w.json"));
  const nlohmann::json& p = j.at("policies").at(0);
  EXPECT_EQ(p.at("policy"), "window");
  for (const auto& s : p.at("steps")) {  // [layer, head, position, mass, observed, bound, kept]
    const int layer = s[0], position = s[2], kept = s[6];
    EXPECT_EQ(s[3].get<double>(), 0.0) << s.dump();
    EXPECT_EQ(s[4].get<double>(), 0.0) << s.dump();
    EXPECT_EQ(kept, layer == 0 ? std::min(position + 1, 5) : position + 1) << s.dump();
  }
  for (const auto& kl : p.at("kl_per_position")) EXPECT_EQ(kl.get<double>(), 0.0);
  const auto other = test::run_kvfid({"evict", "--model", gemma, "--tokens", tokens, "--policy", "h2o:4"});
  EXPECT_EQ(other.exit_code, 2);
  EXPECT_NE(other.err.find("--policy: eviction 'h2o:4' on a model with its own sliding window"), std::string::npos)
      << other.err;
  const auto unwindowed = test::run_kvfid(
      {"evict", "--model", test::fixtures_dir() + "/tiny-llama", "--tokens", tokens, "--policy", "window"});
  EXPECT_EQ(unwindowed.exit_code, 2);
  EXPECT_NE(unwindowed.err.find("'window' on a model without a sliding window"), std::string::npos) << unwindowed.err;
}

TEST(CmdEvict, BadPoliciesAndTokenSourcesExitTwo) {
  const std::string model = test::fixtures_dir() + "/tiny-llama";
  for (const char* policy : {"lru:16", "h2o:0", "snapkv:8,4", "snapkv:8,4,2", "streaming:2", "streaming:2,0",
                             "h2o:8,x:1"}) {
    const auto r = test::run_kvfid({"evict", "--model", model, "--tokens", "1,2,3", "--policy", policy});
    EXPECT_EQ(r.exit_code, 2) << policy << "\n" << r.err;
    EXPECT_NE(r.err.find("--policy"), std::string::npos) << r.err;
  }
  EXPECT_EQ(test::run_kvfid({"evict", "--model", model, "--policy", "streaming:1,2"}).exit_code, 2);
  EXPECT_EQ(test::run_kvfid({"evict", "--model", model, "--tokens", "1,-2", "--policy", "streaming:1,2"}).exit_code, 2);
}

}  // namespace
}  // namespace kvfid::cli
