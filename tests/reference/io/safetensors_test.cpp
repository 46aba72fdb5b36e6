#include "reference/io/safetensors.h"

#include <cstring>
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

// A file from a header written by hand and `data_len` data bytes, so tests can state
// exactly the hostile header they mean.
std::string hand_made(const std::string& header, std::size_t data_len) {
  std::string out(8, '\0');
  const std::uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + std::string(data_len, '\x01');
}

std::string refusal(const std::string& dir, const std::string& name, const std::string& bytes) {
  const std::string path = write_bytes(dir, name, bytes);
  try {
    read_safetensors(path);
  } catch (const InputError& e) {
    EXPECT_EQ(e.source(), path);
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    return e.what();
  }
  ADD_FAILURE() << name << " was accepted";
  return "";
}

TEST(Safetensors, ShapeTimesElementSizeThatWrapsIsRefused) {
  const std::string dir = test::scratch_dir("st_overflow");
  // 2^61 F64 elements need 2^64 bytes, which wrapped to 0 and matched an empty range.
  EXPECT_NE(refusal(dir, "wrap", hand_made(R"({"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}})", 0))
                .find("tensor 'a' shape needs more than 2^63 bytes"),
            std::string::npos);
  // The element count itself overflows before a zero dimension would make it 0.
  EXPECT_NE(refusal(dir, "numel", hand_made(R"({"a":{"dtype":"U8","shape":[4611686018427387904,4,0],"data_offsets":[0,0]}})", 0))
                .find("shape overflows 64 bits"),
            std::string::npos);
  // A dimension that does not fit int64 would be stored negative.
  EXPECT_NE(refusal(dir, "dim", hand_made(R"({"a":{"dtype":"U8","shape":[0,9223372036854775808],"data_offsets":[0,0]}})", 0))
                .find("shape overflows 64 bits"),
            std::string::npos);
}

TEST(Safetensors, HolesAndOverlapsBetweenTensorsAreNamed) {
  const std::string dir = test::scratch_dir("st_tiling");
  // a = [0, 8), b = [16, 24): bytes 8..16 belong to no tensor.
  const std::string hole =
      R"({"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},"b":{"dtype":"F64","shape":[1],"data_offsets":[16,24]}})";
  EXPECT_NE(refusal(dir, "hole", hand_made(hole, 24)).find("data bytes [8, 16) belong to no tensor (a hole before tensor 'b')"),
            std::string::npos);
  const std::string overlap =
      R"({"a":{"dtype":"F64","shape":[2],"data_offsets":[0,16]},"b":{"dtype":"F64","shape":[1],"data_offsets":[8,16]}})";
  EXPECT_NE(refusal(dir, "overlap", hand_made(overlap, 16)).find("tensor 'b' data [8, 16) overlaps tensor 'a'"),
            std::string::npos);
  // A hole at the start, before the first tensor.
  EXPECT_NE(refusal(dir, "lead", hand_made(R"({"a":{"dtype":"F64","shape":[1],"data_offsets":[8,16]}})", 16))
                .find("data bytes [0, 8) belong to no tensor"),
            std::string::npos);
  // Exact tiling, with an empty tensor between two others, is accepted.
  const std::string tiled = R"({"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},"e":{"dtype":"F32","shape":[0,3],)"
                            R"("data_offsets":[8,8]},"b":{"dtype":"F64","shape":[1],"data_offsets":[8,16]}})";
  EXPECT_EQ(read_safetensors(write_bytes(dir, "tiled", hand_made(tiled, 16))).tensors.size(), 3u);
}

TEST(Safetensors, DeeplyNestedHeaderIsOneLineNotAStackOverflow) {
  const std::string dir = test::scratch_dir("st_deep");
  const std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
  const std::string what =
      refusal(dir, "deep", hand_made(R"({"a":{"dtype":)" + deep + R"(,"shape":[1],"data_offsets":[0,8]}})", 8));
  EXPECT_NE(what.find("not a safetensors file: header nests deeper than 64 levels"), std::string::npos) << what;
  // Within the limit, an unsupported dtype is described, not serialized.
  EXPECT_NE(refusal(dir, "dtype", hand_made(R"({"a":{"dtype":[[["F64"]]],"shape":[1],"data_offsets":[0,8]}})", 8))
                .find("unsupported dtype an array of 1 elements"),
            std::string::npos);
}

TEST(Safetensors, AtomicWriteToMissingFolderLeavesNothing) {
  std::string dir = test::scratch_dir("st_atomic");
  EXPECT_THROW(write_safetensors(dir + "/no/such/dir/x.safetensors", {{"a", tensor_f64({1}, {1.0})}}), InputError);
  EXPECT_TRUE(std::filesystem::is_empty(dir));
}

}  // namespace
}  // namespace kvfid::ref
