#include "reference/io/sha256.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "reference/io/sha256_blocks.h"

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

// The portable compression alone on FIPS 180-2's "abc" (one padded block): on a machine
// with the SHA extensions every other test here runs the hardware path.
TEST(Sha256, PortableBlocksGiveTheFipsDigest) {
  std::uint8_t block[64] = {'a', 'b', 'c', 0x80};
  block[63] = 24;  // the message length in bits, big-endian
  sha256_blocks::State state{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  sha256_blocks::compress_portable(state, block, 1);
  const sha256_blocks::State want{0xba7816bf, 0x8f01cfea, 0x414140de, 0x5dae2223, 0xb00361a3, 0x96177a9c, 0xb410ff61, 0xf20015ad};
  EXPECT_EQ(state, want);
}

// The SHA-NI path and the portable one reach the same state from random states over
// random messages of 1 to 40 blocks (every lane of the state and of the schedule moves).
TEST(Sha256, HardwareBlocksEqualPortable) {
  if (!sha256_blocks::hardware_available()) GTEST_SKIP() << "this CPU has no SHA extensions: only the portable path runs";
  SCOPED_TRACE(test::seed_trace());
  std::mt19937_64 rng(test::test_seed());
  for (int trial = 0; trial < 200; ++trial) {
    const std::size_t blocks = 1 + rng() % 40;
    std::vector<std::uint8_t> message(64 * blocks);
    for (std::uint8_t& b : message) b = std::uint8_t(rng());
    sha256_blocks::State portable;
    for (std::uint32_t& w : portable) w = std::uint32_t(rng());
    sha256_blocks::State hardware = portable;
    sha256_blocks::compress_portable(portable, message.data(), blocks);
    sha256_blocks::compress_hardware(hardware, message.data(), blocks);
    ASSERT_EQ(hardware, portable) << "trial " << trial << ", " << blocks << " blocks";
  }
}

}  // namespace
}  // namespace kvfid::ref
