// Bad input and usage at the command line: exit 2, one line on stderr naming the
// culprit, nothing written.
#include <filesystem>

#include <gtest/gtest.h>

#include "reference/io/hf.h"
#include "reference/synth/synthetic_model.h"
#include "tests/common/model_files.h"
#include "tests/common/run_cli.h"
#include "tests/common/test_env.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the specification's names: the layer below
namespace {
namespace fs = std::filesystem;

constexpr int kBadInput = 2;

void expect_one_error_line(const test::CliResult& r, const std::string& names) {
  EXPECT_EQ(r.exit_code, kBadInput) << r.err;
  const auto lines = test::split_lines(r.err);
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_NE(lines[0].find(names), std::string::npos) << "'" << names << "' not in: " << lines[0];
}

TEST(CliBadInput, InfoOnGarbageNamesTheFile) {
  const std::string path = test::scratch_dir("cli_garbage") + "/garbage.bin";
  test::write_bytes(path, std::string(1000, '\x5a'));
  const auto r = test::run_kvfid({"info", "--model", path});
  expect_one_error_line(r, path);
  EXPECT_EQ(r.out, "");
}

TEST(CliBadInput, InfoOnMissingPathNamesIt) {
  const std::string path = test::scratch_dir("cli_missing") + "/absent.bin";
  expect_one_error_line(test::run_kvfid({"info", "--model", path}), path);
}

class CliConvertRefusal : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = test::scratch_dir("cli_convert_refusal");
    model_ = root_ + "/model.bin";
    test::write_bytes(model_, test::encode_llama2c(make_synthetic_model(test::tiny_llama2c_config(true), test::test_seed())));
  }
  std::vector<fs::path> entries() const { return {fs::directory_iterator(root_), fs::directory_iterator()}; }
  std::string root_;
  std::string model_;
};

TEST_F(CliConvertRefusal, MissingParentFolderExitsTwoAndLeavesNothing) {
  const std::string out = root_ + "/no/such/parent/out";
  expect_one_error_line(test::run_kvfid({"convert", "--model", model_, "--out", out}), out);
  EXPECT_EQ(entries().size(), 1u);  // only the model
}

TEST_F(CliConvertRefusal, ParentThatIsAFileExitsTwoAndLeavesNothing) {
  // Tests may run as root, where permission bits do not stop writes; a file as the
  // parent folder makes the target unwritable for everyone.
  const std::string out = model_ + "/out";
  expect_one_error_line(test::run_kvfid({"convert", "--model", model_, "--out", out}), out);
  EXPECT_EQ(entries().size(), 1u);
}

TEST_F(CliConvertRefusal, LossyDtypeExitsTwoAndLeavesNothing) {
  const std::string out = root_ + "/out";
  const auto r = test::run_kvfid({"convert", "--model", model_, "--out", out, "--dtype", "f16"});
  EXPECT_EQ(r.exit_code, kBadInput);
  const auto lines = test::split_lines(r.err);
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.back().find(out), std::string::npos) << lines.back();  // progress lines come first
  EXPECT_NE(lines.back().find("not exactly representable in f16"), std::string::npos) << lines.back();
  EXPECT_EQ(entries().size(), 1u);
}

TEST_F(CliConvertRefusal, UnknownDtypeNamesTheFlag) {
  expect_one_error_line(test::run_kvfid({"convert", "--model", model_, "--out", root_ + "/o", "--dtype", "f8"}),
                        "--dtype");
  EXPECT_EQ(entries().size(), 1u);
}

TEST(CliUsage, UnknownSubcommandExitsTwo) {
  expect_one_error_line(test::run_kvfid({"frobnicate"}), "frobnicate");
}

TEST(CliUsage, UnknownOptionExitsTwo) {
  expect_one_error_line(test::run_kvfid({"info", "--model", "x", "--colour"}), "--colour");
}

TEST(CliUsage, MissingRequiredOptionExitsTwo) {
  expect_one_error_line(test::run_kvfid({"convert", "--model", "x"}), "--out");
}

TEST(CliUsage, InfoHelpExitsZero) {
  const auto r = test::run_kvfid({"info", "--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("usage: kvfid info --model PATH"), std::string::npos) << r.out;
  EXPECT_EQ(r.err, "");
}

}  // namespace
}  // namespace kvfid::cli
