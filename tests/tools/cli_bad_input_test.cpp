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


void expect_one_error_line(const test::CliResult& r, const std::string& names) {
  EXPECT_EQ(r.exit_code, test::kExitBadInput) << r.err;
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
  EXPECT_EQ(r.exit_code, test::kExitBadInput);
  const auto lines = test::split_lines(r.err);
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.back().find(out), std::string::npos) << lines.back();  // progress lines come first
  EXPECT_NE(lines.back().find("not exactly representable in f16; choose a wider --dtype"), std::string::npos)
      << lines.back();  // the library's reason, and the flag the CLI names
  EXPECT_EQ(entries().size(), 1u);
}

TEST_F(CliConvertRefusal, UnknownDtypeNamesTheFlag) {
  expect_one_error_line(test::run_kvfid({"convert", "--model", model_, "--out", root_ + "/o", "--dtype", "f8"}),
                        "--dtype");
  EXPECT_EQ(entries().size(), 1u);
}

// Hostile inputs (found by fuzzing the CLI): each is exit 2 with one line naming the
// file, a bounded line, and no output file.
class CliHostileInput : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = test::scratch_dir("cli_hostile");
    model_ = root_ + "/model";
    write_hf_model(model_, make_synthetic_model(synthetic_shape("tiny-llama"), test::test_seed()), FloatFormat::f32);
  }
  std::string config() const { return model_ + "/config.json"; }
  // config.json with `field` added as raw JSON text.
  void add_to_config(const std::string& field, const std::string& json) {
    std::string text = test::read_bytes(config());
    text.insert(text.rfind('}'), ", \"" + field + "\": " + json);
    test::write_bytes(config(), text);
  }
  void expect_refused_without_output(const std::vector<std::string>& args, const std::string& names,
                                     const std::string& output) {
    const auto r = test::run_kvfid(args);
    expect_one_error_line(r, names);
    EXPECT_LT(r.err.size(), 400u) << r.err.substr(0, 400);
    EXPECT_FALSE(fs::exists(output)) << output;
  }
  std::string root_;
  std::string model_;
};

TEST_F(CliHostileInput, DeeplyNestedConfigIsBadInputNotASegfault) {
  add_to_config("rope_scaling", std::string(100'000, '[') + std::string(100'000, ']'));
  expect_refused_without_output({"info", "--model", model_, "--json", root_ + "/info.json"}, config(),
                                root_ + "/info.json");
  expect_refused_without_output({"run", "--model", model_, "--tokens", "1,2", "--out", root_ + "/taps.safetensors"},
                                config(), root_ + "/taps.safetensors");
}

TEST_F(CliHostileInput, HeadsTimesHeadDimOverflowIsBadInputNotZeroKvBytes) {
  std::string text = test::read_bytes(config());
  for (const char* field : {"num_attention_heads", "num_key_value_heads", "head_dim"}) {
    const std::size_t at = text.find(std::string("\"") + field + "\"");
    ASSERT_NE(at, std::string::npos) << field;
    const std::size_t value = text.find(':', at) + 1, end = text.find_first_of(",}", value);
    text.replace(value, end - value, " 65536");
  }
  test::write_bytes(config(), text);
  expect_refused_without_output({"info", "--model", model_, "--json", root_ + "/info.json"}, config(),
                                root_ + "/info.json");
}

TEST_F(CliHostileInput, AMillionDigitTokenIsQuotedBriefly) {
  const std::string prompt = root_ + "/p.tokens";
  test::write_bytes(prompt, "1 2 " + std::string(1'000'000, '8') + "\n");
  expect_refused_without_output({"golden", "--model", model_, "--prompt", prompt, "--out", root_ + "/g"}, prompt,
                                root_ + "/g");
}

TEST_F(CliHostileInput, NegativeOrOversizedTokensOnTheCommandLineAreBadInput) {
  for (const std::string tokens : {"1,-1", "1,2147483648", "1,300"})
    expect_refused_without_output({"golden", "--model", model_, "--tokens", tokens, "--out", root_ + "/g"}, "--tokens",
                                  root_ + "/g");
}

TEST_F(CliHostileInput, OutOfMemoryIsOneLineAndExitTwoNotAnAbort) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "ASan reserves terabytes of address space; a ulimit -v would stop it before main";
#else
  // 8 million tokens (16 MB of text, 32 MB as ints) under a 40 MB address-space limit:
  // the allocation fails wherever it happens, and std::bad_alloc must reach main's catch.
  constexpr int kAddressSpaceKiB = 40'000;
  const std::string prompt = root_ + "/big.tokens";
  std::string text;
  text.reserve(16'000'000);
  for (int i = 0; i < 8'000'000; ++i) text += "1 ";
  test::write_bytes(prompt, text);
  const auto r = test::run_command({"/bin/sh", "-c", "ulimit -v " + std::to_string(kAddressSpaceKiB) + " && exec \"$0\" \"$@\"",
                                    test::kvfid_binary(), "golden", "--model", model_, "--prompt", prompt, "--out",
                                    root_ + "/g"});
  expect_one_error_line(r, "out of memory");
  EXPECT_FALSE(fs::exists(root_ + "/g"));
#endif
}

TEST(CliUsage, EmptyValueNamesTheFlag) {
  // --model '' once ended in a message naming nothing (": no such file or folder").
  expect_one_error_line(test::run_kvfid({"info", "--model", ""}), "--model");
  expect_one_error_line(test::run_kvfid({"info", "--model="}), "--model");
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
