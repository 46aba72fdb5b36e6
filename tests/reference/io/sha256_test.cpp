#include "reference/io/sha256.h"

#include <gtest/gtest.h>

#include "reference/util/input_error.h"
#include "tests/common/model_files.h"
#include "tests/common/test_env.h"

namespace kvfid::ref {
namespace {

// FIPS 180-2, Appendix B: the three SHA-256 examples.
TEST(Sha256, Fips180OneBlockMessage) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, Fips180MultiBlockMessage) {
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, Fips180OneMillionA) {
  EXPECT_EQ(sha256_hex(std::string(1'000'000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, EmptyMessage) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

// Streaming in pieces that straddle block boundaries must equal hashing at once.
TEST(Sha256, ChunkedUpdatesMatchOneShot) {
  std::string message;
  for (int i = 0; i < 1000; ++i) message += char(i * 7 + 3);
  const std::string whole = sha256_hex(message);
  for (std::size_t piece : {1u, 55u, 56u, 63u, 64u, 65u, 333u}) {
    Sha256 h;
    for (std::size_t at = 0; at < message.size(); at += piece) h.update(std::string_view(message).substr(at, piece));
    EXPECT_EQ(h.hex_digest(), whole) << "piece " << piece;
  }
}

TEST(Sha256, FileMatchesBytesAndMissingFileIsInputError) {
  const std::string dir = test::scratch_dir("sha256_file");
  const std::string message(3 << 20, 'q');  // spans several 1 MiB read chunks
  test::write_bytes(dir + "/m", message);
  EXPECT_EQ(sha256_file(dir + "/m"), sha256_hex(message));
  EXPECT_THROW(sha256_file(dir + "/absent"), InputError);
}

}  // namespace
}  // namespace kvfid::ref
