#pragma once
// Every codec in registry.h's Codecs as gtest types, named by the format's own name, so
// a derived test written once (TYPED_TEST_SUITE(..., test::AllCodecs,
// test::CodecName)) runs for each registered format without a line per format.
#include <string>

#include <gtest/gtest.h>

#include "reference/formats/quant/registry.h"
#include "tests/common/test_env.h"

namespace kvfid::test {
using namespace kvfid::ref;  // the specification's types

template <class List>
struct GtestTypesOf;
template <class... Cs>
struct GtestTypesOf<quant::CodecList<Cs...>> {
  using type = ::testing::Types<Cs...>;
};

using AllCodecs = GtestTypesOf<quant::Codecs>::type;

struct CodecName {
  template <class C>
  static std::string GetName(int) {
    return param_name(C::kName);
  }
};

// The FormatInfo of codec C (the block generators take formats at run time).
template <class C>
const quant::FormatInfo& info_of() {
  return quant::format_by_name(C::kName, "the derived codec tests");
}

}  // namespace kvfid::test
