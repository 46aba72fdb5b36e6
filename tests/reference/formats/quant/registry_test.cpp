// The registry's plain float codecs: each FloatFormat has exactly one, under its own
// name, and no other codec claims to be a plain float format.
#include "reference/formats/quant/registry.h"

#include <gtest/gtest.h>

#include "reference/formats/float_format.h"

namespace kvfid::ref::quant {
namespace {

TEST(Registry, EachPlainFloatFormatIsOneCodecUnderItsName) {
  int plain = 0;
  for (const FormatInfo& f : all_formats()) plain += f.plain.has_value();
  EXPECT_EQ(plain, 3);
  for (FloatFormat f : {FloatFormat::f32, FloatFormat::f16, FloatFormat::bf16}) {
    const FormatInfo& info = plain_format(f);
    EXPECT_EQ(info.name, to_string(f));
    EXPECT_EQ(info.plain, f);
    EXPECT_EQ(info.block, 1);
    EXPECT_EQ(info.bytes, f == FloatFormat::f32 ? 4 : 2);
    EXPECT_EQ(&format_by_name(to_string(f), "test"), &info);
  }
}

}  // namespace
}  // namespace kvfid::ref::quant
