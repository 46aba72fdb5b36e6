#pragma once
// The registered codecs (registry.h's Codecs) that satisfy a predicate, as gtest types
// named by the format's own name: the tests of one codec family (turbo_mse_test.cpp,
// turbo_prod_test.cpp) cover every registered member of it without a line per format.
#include <string>
#include <type_traits>

#include <gtest/gtest.h>

#include "reference/formats/quant/registry.h"
#include "tests/common/test_env.h"

namespace kvfid::test {
using namespace kvfid::ref;  // the specification's types

template <template <class> class Pred, class Kept, class... Cs>
struct KeepIf {
  using type = Kept;
};
template <template <class> class Pred, class... Kept, class C, class... Rest>
struct KeepIf<Pred, ::testing::Types<Kept...>, C, Rest...> {
  using type = typename KeepIf<Pred, std::conditional_t<Pred<C>::value, ::testing::Types<Kept..., C>,
                                                        ::testing::Types<Kept...>>,
                               Rest...>::type;
};

// CodecsWhere<Pred>::type: the codecs C of `List` with Pred<C>::value, in registry order;
// ::count, how many.
template <template <class> class Pred, class List = quant::Codecs>
struct CodecsWhere;
template <template <class> class Pred, class... Cs>
struct CodecsWhere<Pred, quant::CodecList<Cs...>> {
  using type = typename KeepIf<Pred, ::testing::Types<>, Cs...>::type;
  static constexpr int count = (0 + ... + int(Pred<Cs>::value));
};

struct CodecTypeName {
  template <class C>
  static std::string GetName(int) {
    return param_name(C::kName);
  }
};

}  // namespace kvfid::test
