#include "reference/mp/mp_forward.h"

#include <gtest/gtest.h>

#include "reference/synth/synthetic_model.h"
#include "tests/common/test_env.h"
#include "tests/reference/mp/mp_test_util.h"

namespace kvfid::ref {
namespace {

// Each value is computed by one thread in a fixed order, so the MPFR results (not just
// their float64 roundings) are identical for any thread count, including uneven splits.
TEST(MpForward, ThreadCountDoesNotChangeABit) {
  SCOPED_TRACE(test::seed_trace());
  ModelConfig c = test::tiny_config(2);
  c.qkv_bias = true;
  c.rope = RopeStyle::rotate_half;
  const Model model = make_synthetic_model(c, test::test_seed());
  const MpWeights weights = to_mp_weights(model, 128);
  const std::vector<int> tokens = {5, 1, 30, 2, 2};
  for (const MpArith& arith : {MpArith::exact(128), MpArith::ieee(FloatFormat::f16)}) {
    MpForwardOptions o;
    o.arith = arith;
    o.threads = 1;
    const std::vector<MpTap> one = mp_forward(model, weights, tokens, o);
    for (int threads : {2, 3}) {
      o.threads = threads;
      const std::vector<MpTap> many = mp_forward(model, weights, tokens, o);
      ASSERT_EQ(one.size(), many.size());
      for (std::size_t i = 0; i < one.size(); ++i)
        EXPECT_TRUE(test::mp_identical(one[i].values, many[i].values)) << one[i].name << " with " << threads << " threads";
    }
  }
}

}  // namespace
}  // namespace kvfid::ref
