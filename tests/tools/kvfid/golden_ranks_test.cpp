// kvfid golden under a real `mpirun -np N` (OpenMPI; built only when CMake found MPI):
// the golden files of 1, 2 and 3 ranks are byte for byte the committed goldens (one of
// them GQA 7:1 at a real head size), and faults end the job without a partial golden:
// one rank given a damaged model, one rank given another model, one rank killed.
// The sharding itself is tested in-process: tests/reference/mp/shards_test.cpp.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "reference/golden/golden_io.h"
#include "tests/common/generated_fixtures.h"
#include "tests/common/run_cli.h"
#include "tests/common/test_env.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the specification's names: the layer below
namespace {

namespace fs = std::filesystem;

// mpirun with what CI needs: -q (no banners: a failure stays one line), as many ranks as
// asked on a 2-core machine, and root allowed (CI runs as root; README explains).
std::vector<std::string> mpirun(int ranks) {
  std::vector<std::string> argv = {KVFID_MPIRUN, "-q", "--oversubscribe"};
  if (geteuid() == 0) argv.push_back("--allow-run-as-root");
  argv.insert(argv.end(), {"-np", std::to_string(ranks)});
  return argv;
}

std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

nlohmann::json manifest_of(const fs::path& dir) {
  std::ifstream in(dir / kGoldenManifestFile);
  return nlohmann::json::parse(in);
}

std::string bytes_of(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The committed goldens the ranks must reproduce: llama (MHA), qwen2 (GQA 7:1 with q/k/v
// bias) and the reduced Qwen2.5-0.5B shape (GQA 7:1, head_dim 64, 896 wide).
const std::vector<std::string> kGoldens = {"tiny-llama/short", "tiny-qwen2/short", "qwen2.5-0.5b-l1-v256/short"};

class GoldenRanks : public ::testing::TestWithParam<std::tuple<std::string, int>> {};

TEST_P(GoldenRanks, ByteIdenticalToTheCommittedGolden) {
  const auto& [golden, ranks] = GetParam();
  const fs::path committed = fs::path(test::golden_dir()) / golden;
  const nlohmann::json expected = manifest_of(committed);
  const std::string model = test::ensure_model(expected.at("model").get<std::string>());
  const fs::path out = fs::path(test::scratch_dir("golden_ranks_" + test::param_name(golden))) / "out";
  std::vector<std::string> args = {test::kvfid_binary(), "golden", "--model", model, "--out", out.string(), "--taps",
                                   expected.at("taps").get<std::string>(), "--threads", "1", "--tokens"};
  std::string tokens;
  for (const auto& t : expected.at("tokens")) tokens += (tokens.empty() ? "" : ",") + std::to_string(t.get<int>());
  args.push_back(tokens);

  const test::CliResult r = test::run_command(mpirun(ranks) + args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(bytes_of(out / kGoldenTensorsFile), bytes_of(committed / kGoldenTensorsFile))
      << golden << " from " << ranks << " ranks";
  // The manifest is the one-process manifest (the committed one may predate today's
  // certification margins), plus the distribution.
  const fs::path single = out.parent_path() / "single";
  std::vector<std::string> one_process(args.begin() + 1, args.end());
  one_process[4] = single.string();  // --out
  const test::CliResult s = test::run_kvfid(one_process);
  ASSERT_EQ(s.exit_code, 0) << s.err;
  nlohmann::json got = manifest_of(out), want = manifest_of(single);
  EXPECT_EQ(got.at("distribution").at("ranks"), ranks);
  for (const char* key : {"model_sha256", "config", "tokens", "taps", "precision_bits", "certification"})
    EXPECT_EQ(got.at(key), want.at(key)) << key;
  EXPECT_EQ(want.at("model_sha256"), expected.at("model_sha256"));
  // Progress and the closing line come from rank 0 alone.
  EXPECT_EQ(r.err.find("values certified"), r.err.rfind("values certified")) << r.err;
}

INSTANTIATE_TEST_SUITE_P(Committed, GoldenRanks, ::testing::Combine(::testing::ValuesIn(kGoldens), ::testing::Values(1, 2, 3)),
                         [](const auto& info) {
                           return test::param_name(std::get<0>(info.param) + "_np" + std::to_string(std::get<1>(info.param)));
                         });

// An MPMD launch: rank 0 runs `rank0`, rank 1 runs `rank1` (mpirun's ':' syntax).
std::vector<std::string> two_ranks(const std::vector<std::string>& rank0, const std::vector<std::string>& rank1) {
  std::vector<std::string> argv = mpirun(1) + rank0;
  argv.insert(argv.end(), {":", "-np", "1"});
  return argv + rank1;
}

std::vector<std::string> small_golden(const fs::path& model, const fs::path& out) {
  return {test::kvfid_binary(), "golden", "--model", model.string(), "--tokens", "1,2,3", "--out", out.string(),
          "--threads", "1"};
}

// A failure every rank meets alike is said once, as in one process.
TEST(GoldenRanksFaults, ACommonFailureIsOneLine) {
  const fs::path out = fs::path(test::scratch_dir("golden_ranks_common")) / "out";
  const test::CliResult r = test::run_command(
      mpirun(3) + std::vector<std::string>{test::kvfid_binary(), "golden", "--model", test::fixtures_dir() + "/tiny-llama",
                                           "--tokens", "1,-4", "--out", out.string()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  ASSERT_EQ(test::split_lines(r.err).size(), 1u) << r.err;
  EXPECT_EQ(r.err.find("rank"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
}

// Rank 1 reads a damaged copy of the model (MPMD launch: one argument list per rank):
// one line names rank 1 and the file, exit 2, no golden.
TEST(GoldenRanksFaults, ARankThatCannotReadItsModelEndsTheJob) {
  const fs::path scratch = test::scratch_dir("golden_ranks_damaged");
  const fs::path damaged = scratch / "tiny-qwen2";
  fs::copy(test::fixtures_dir() + "/tiny-qwen2", damaged);
  const fs::path weights = damaged / "model.safetensors";
  fs::resize_file(weights, fs::file_size(weights) / 2);
  const fs::path out = scratch / "out";
  const test::CliResult r =
      test::run_command(two_ranks(small_golden(test::fixtures_dir() + "/tiny-qwen2", out), small_golden(damaged, out)));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  ASSERT_EQ(test::split_lines(r.err).size(), 1u) << r.err;
  EXPECT_NE(r.err.find("rank 1 of 2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(weights.string()), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
}

// Rank 1 holds a different model of the same shape (another host's stale copy, say): the
// ranks would mix two models, so the job is refused before any work.
TEST(GoldenRanksFaults, ARankWithAnotherModelIsRefused) {
  const fs::path scratch = test::scratch_dir("golden_ranks_other");
  const fs::path other = scratch / "tiny-qwen2";
  const test::CliResult made = test::run_kvfid({"fixture", "--shape", "tiny-qwen2", "--seed", "99", "--out", other.string()});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const fs::path out = scratch / "out";
  const test::CliResult r =
      test::run_command(two_ranks(small_golden(test::fixtures_dir() + "/tiny-qwen2", out), small_golden(other, out)));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  ASSERT_EQ(test::split_lines(r.err).size(), 1u) << r.err;
  EXPECT_NE(r.err.find("rank 1 of 2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("sha256"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
}

// Rank 1 runs with too little memory (its host's limit, here RLIMIT_AS by prlimit): its
// memory check refuses before any work, the line names it, exit 2, no golden.
TEST(GoldenRanksFaults, ARankWithoutTheMemoryEndsTheJob) {
  const std::string prlimit = "/usr/bin/prlimit";
  if (!fs::exists(prlimit)) GTEST_SKIP() << "no " << prlimit << " (util-linux) to limit one rank's memory";
  const fs::path out = fs::path(test::scratch_dir("golden_ranks_memory")) / "out";
  const std::string model = test::ensure_model("fixtures/generated/qwen2.5-0.5b-l1-v256");
  // --taps all over the long prompt needs ~480 MiB (kvfid golden's estimate); 500 MB of
  // address space leaves ~300 MiB once MPI is initialized.
  const std::vector<std::string> golden = {test::kvfid_binary(), "golden", "--model", model, "--prompt",
                                           test::fixtures_dir() + "/prompts/long.tokens", "--taps", "all", "--out",
                                           out.string(), "--threads", "1"};
  const test::CliResult r =
      test::run_command(two_ranks(golden, std::vector<std::string>{prlimit, "--as=500000000"} + golden));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  ASSERT_EQ(test::split_lines(r.err).size(), 1u) << r.err;
  EXPECT_NE(r.err.find("rank 1 of 2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("RLIMIT_AS"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
}

// Every command but golden refuses a launch of several ranks (they would all write).
TEST(GoldenRanksFaults, OtherCommandsRefuseSeveralRanks) {
  const test::CliResult r = test::run_command(
      mpirun(2) + std::vector<std::string>{test::kvfid_binary(), "info", "--model", test::fixtures_dir() + "/tiny-llama"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  ASSERT_EQ(test::split_lines(r.err).size(), 1u) << r.err;
  EXPECT_NE(r.err.find("only golden"), std::string::npos) << r.err;
}

// The pid of the process launched as rank `rank` whose command line mentions `marker`.
pid_t find_rank(int rank, const std::string& marker) {
  const std::string wanted = "OMPI_COMM_WORLD_RANK=" + std::to_string(rank);
  for (const fs::directory_entry& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string cmdline = bytes_of(e.path() / "cmdline");
    if (cmdline.find(marker) == std::string::npos || cmdline.find("golden") == std::string::npos) continue;
    std::string environ = bytes_of(e.path() / "environ");
    for (std::size_t at = 0; at < environ.size(); at = environ.find('\0', at) + 1) {
      if (environ.compare(at, wanted.size() + 1, wanted + '\0') == 0 ||
          (environ.compare(at, wanted.size(), wanted) == 0 && at + wanted.size() == environ.size()))
        return pid_t(std::stol(name));
      if (environ.find('\0', at) == std::string::npos) break;
    }
  }
  return 0;
}

// Rank 1 is killed (SIGKILL: it cannot say anything) while the job runs: mpirun ends
// every rank, names the rank and the signal, exits non-zero, and no golden appears.
TEST(GoldenRanksFaults, AKilledRankLeavesNoGolden) {
  const fs::path scratch = test::scratch_dir("golden_ranks_killed");
  const fs::path out = scratch / "out";
  const std::string model = test::ensure_model("fixtures/generated/qwen2.5-0.5b-l1-v256");
  // Without -q: the banner naming the dead rank is what the user reads here.
  std::vector<std::string> argv = {KVFID_MPIRUN, "--oversubscribe"};
  if (geteuid() == 0) argv.push_back("--allow-run-as-root");
  argv = argv + std::vector<std::string>{"-np", "2", test::kvfid_binary(), "golden", "--model", model, "--prompt",
                                         test::fixtures_dir() + "/prompts/long.tokens", "--taps", "all", "--out",
                                         out.string(), "--threads", "1"};
  const test::StartedCommand launcher = test::start_command(argv);
  pid_t victim = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!victim && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    victim = find_rank(1, out.string());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // into the computation
  if (victim) kill(victim, SIGKILL);
  const test::MeasuredRun r = test::wait_command(launcher);
  ASSERT_NE(victim, 0) << "rank 1 never appeared";
  const std::string& err = r.err;
  EXPECT_NE(r.exit_code, 0) << err;
  EXPECT_NE(err.find("rank 1"), std::string::npos) << err;
  EXPECT_NE(err.find("signal 9"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(out)) << err;
}

}  // namespace
}  // namespace kvfid::cli
