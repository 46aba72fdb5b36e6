#include "reference/io/weight_checks.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "reference/util/input_error.h"

namespace kvfid::ref {
namespace {

// One special value's bits in each stored type, and the word check_finite names it by.
struct Special {
  std::uint32_t f32;
  std::uint16_t f16, bf16;
  const char* word;  // nullptr: finite, must pass
};
constexpr Special kSpecials[] = {
    {0x7fc00000u, 0x7e00u, 0x7fc0u, "NaN"},
    {0x7f800001u, 0x7c01u, 0x7f81u, "NaN"},  // signalling NaN, lowest payload bit
    {0x7f800000u, 0x7c00u, 0x7f80u, "Inf"},
    {0xff800000u, 0xfc00u, 0xff80u, "-Inf"},
    {0x7f7fffffu, 0x7bffu, 0x7f7fu, nullptr},  // the largest finite value
    {0x00000001u, 0x0001u, 0x0001u, nullptr},  // the smallest subnormal
};

// A [rows, cols] view of `type` (zeros) with element `at` set to the special's bits.
Matrix with_element(WeightType type, int rows, int cols, std::size_t at, const Special& s) {
  const std::size_t width = weight_type_bytes(type), n = std::size_t(rows) * std::size_t(cols);
  auto bytes = std::make_shared<std::vector<std::uint8_t>>(n * width, 0);
  if (type == WeightType::f32) std::memcpy(bytes->data() + at * 4, &s.f32, 4);
  if (type == WeightType::f16) std::memcpy(bytes->data() + at * 2, &s.f16, 2);
  if (type == WeightType::bf16) std::memcpy(bytes->data() + at * 2, &s.bf16, 2);
  return Matrix::view(rows, cols, type, bytes->data(), bytes);
}

// Every stored type, every special, at the first, a middle and the last element (the
// bit scan's start, body and tail): the error names the element counted from
// first_index and says what it is; finite extremes pass.
TEST(WeightChecks, NonFiniteElementsAreNamedInEveryStoredType) {
  const int rows = 5, cols = 37;
  for (WeightType type : {WeightType::f32, WeightType::f16, WeightType::bf16})
    for (const Special& s : kSpecials)
      for (std::size_t at : {std::size_t(0), std::size_t(96), std::size_t(rows * cols - 1)}) {
        const Matrix m = with_element(type, rows, cols, at, s);
        SCOPED_TRACE("type " + std::to_string(int(type)) + ", element " + std::to_string(at));
        if (!s.word) {
          EXPECT_NO_THROW(check_finite(m, "f.safetensors", "w", 1000));
          continue;
        }
        try {
          check_finite(m, "f.safetensors", "w", 1000);
          ADD_FAILURE() << "accepted a " << s.word;
        } catch (const InputError& e) {
          EXPECT_EQ(std::string(e.what()),
                    "f.safetensors: tensor 'w' element " + std::to_string(1000 + at) + " is " + s.word);
        }
      }
}

// A view that remaps rows is checked through its rows as read (the bit scan does not
// apply): the element index is the one a reader of the view sees.
TEST(WeightChecks, RemappedViewNamesTheElementAsRead) {
  const Matrix m = with_element(WeightType::bf16, 3, 4, 1 * 4 + 2, kSpecials[2]).with_rows({2, 0, 1});
  try {
    check_finite(m, "f", "w");
    ADD_FAILURE() << "accepted an Inf";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()), "f: tensor 'w' element 10 is Inf");  // storage row 1 is row 2 of the view
  }
}

}  // namespace
}  // namespace kvfid::ref
