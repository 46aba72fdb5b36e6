#include "reference/io/safetensors.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "reference/util/input_error.h"
#include "tests/common/test_env.h"

namespace kvfid::ref {
namespace {

std::string write_bytes(const std::string& dir, const std::string& name, const std::string& bytes) {
  std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

TEST(Safetensors, RoundTripPreservesTensorsAndMetadata) {
  std::string dir = test::scratch_dir("st_roundtrip");
  std::vector<std::pair<std::string, Tensor>> tensors = {
      {"a", tensor_f64({2, 3}, {1, 2, 3, 4, 5, -0.0})},
      {"b", tensor_f32({1}, {0.1f})},
  };
  write_safetensors(dir + "/x.safetensors", tensors, {{"k", "v"}});
  SafetensorsFile f = read_safetensors(dir + "/x.safetensors");
  EXPECT_EQ(f.metadata.at("k"), "v");
  EXPECT_EQ(f.get("a").shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(tensor_values(f.get("a"), "a")[4], 5.0);
  EXPECT_EQ(tensor_values(f.get("b"), "b")[0], double(0.1f));
  EXPECT_THROW(f.get("missing"), InputError);
}

TEST(Safetensors, EncodingIsDeterministic) {
  std::vector<std::pair<std::string, Tensor>> tensors = {{"z", tensor_f64({1}, {1.0})}, {"a", tensor_f64({1}, {2.0})}};
  EXPECT_EQ(encode_safetensors(tensors), encode_safetensors(tensors));
}

TEST(Safetensors, RejectsMalformedFilesWithOneLine) {
  std::string dir = test::scratch_dir("st_bad");
  std::string good = encode_safetensors({{"a", tensor_f64({4}, {1, 2, 3, 4})}});
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"empty", ""},
      {"truncated", good.substr(0, good.size() - 3)},
      {"garbage", std::string(64, '\x7f')},
      {"trailing", good + "xx"},
  };
  for (const auto& [name, bytes] : cases) {
    std::string path = write_bytes(dir, name, bytes);
    try {
      read_safetensors(path);
      ADD_FAILURE() << name << " was accepted";
    } catch (const InputError& e) {
      EXPECT_EQ(e.source(), path);
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
    }
  }
}

TEST(Safetensors, AtomicWriteToMissingFolderLeavesNothing) {
  std::string dir = test::scratch_dir("st_atomic");
  EXPECT_THROW(write_safetensors(dir + "/no/such/dir/x.safetensors", {{"a", tensor_f64({1}, {1.0})}}), InputError);
  EXPECT_TRUE(std::filesystem::is_empty(dir));
}

}  // namespace
}  // namespace kvfid::ref
