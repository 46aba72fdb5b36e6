#pragma once
// Every codec in registry.h's Codecs as a test parameter, named by the format's own
// name, so a derived test written once (TEST_P on a fixture deriving from EveryCodec,
// INSTANTIATE_EVERY_CODEC) runs for each registered format without a line per format.
// The tests reach a codec through its FormatInfo (function pointers), so each test body
// is compiled once, not once per format: the suite's build time does not grow with the
// registry.
#include <string>

#include <gtest/gtest.h>

#include "reference/formats/quant/registry.h"
#include "tests/common/test_env.h"

namespace kvfid::test {
using namespace kvfid::ref;  // the specification's types

class EveryCodec : public ::testing::TestWithParam<int> {  // the parameter: an index in all_formats()
 protected:
  static const quant::FormatInfo& format_at(int index) { return quant::all_formats()[std::size_t(index)]; }
  const quant::FormatInfo& format() const { return format_at(GetParam()); }
};

struct CodecParamName {
  std::string operator()(const ::testing::TestParamInfo<int>& info) const {
    return param_name(quant::all_formats()[std::size_t(info.param)].name);
  }
};

}  // namespace kvfid::test

// Instantiates FIXTURE (derived from test::EveryCodec) for every registered codec.
#define INSTANTIATE_EVERY_CODEC(FIXTURE)                                                                        \
  INSTANTIATE_TEST_SUITE_P(Codecs, FIXTURE, ::testing::Range(0, int(::kvfid::ref::quant::all_formats().size())), \
                           ::kvfid::test::CodecParamName())
