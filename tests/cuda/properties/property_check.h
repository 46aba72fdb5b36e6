#pragma once
// How the property suite runs RapidCheck: a deterministic seed and a modest case count
// by default (CI), both printed per property, and overridable for replay or long runs:
//   KVFID_SEED=N              the seed of every property (default kvfid::test::kDefaultSeed)
//   KVFID_PROPERTY_CASES=N    N cases per property instead of each property's default
//   RC_PARAMS="seed=N max_success=M ..."  RapidCheck's own settings; a seed or
//                             max_success given here wins over the two above, and
//                             RC_PARAMS="reproduce=..." (printed on failure) replays the
//                             shrunk counterexample directly.
// A failure is shrunk by RapidCheck to a minimal case, printed with the seed.
//
// One binary, registered twice with ctest: on the twin (labels property, engine) and,
// with KVFID_PROPERTY_BACKEND=cuda and the prefix Gpu., on CUDA (labels property, gpu),
// where every test skips with the reason when no CUDA device can be used.
#include <chrono>
#include <string>
#include <utility>

#include <gtest/gtest.h>
#include <rapidcheck.h>

#include "cuda/engine/engine_options.h"

namespace kvfid::test {
using namespace kvfid::engine;  // the engine under test

// The engine the properties run: KVFID_PROPERTY_BACKEND=twin (the default) or cuda; any
// other value fails every test that asks.
Backend backend_under_test();

// Empty when backend_under_test() can run here, else why not (probed once).
const std::string& backend_unavailable_reason();

// The parameters of one property run under the policy above.
rc::detail::TestParams property_params(int default_cases);
// Prints the outcome with seed, case count and time; a failure (or give-up) fails the
// current gtest with RapidCheck's counterexample and how to replay it.
void report_property(const std::string& id, const rc::detail::TestParams& params,
                     const rc::detail::TestResult& result, double seconds);

template <class Testable>
void check_property(int default_cases, Testable&& property) {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  rc::detail::TestMetadata metadata;
  metadata.id = std::string(info->test_suite_name()) + "/" + info->name();
  metadata.description = info->name();
  const rc::detail::TestParams params = property_params(default_cases);
  const auto start = std::chrono::steady_clock::now();
  const rc::detail::TestResult result =
      rc::detail::checkTestable(std::forward<Testable>(property), metadata, params);
  report_property(metadata.id, params, result,
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

}  // namespace kvfid::test

// First statement of every test that runs the engine under test.
#define KVFID_REQUIRE_BACKEND()                                                           \
  do {                                                                                    \
    if (!::kvfid::test::backend_unavailable_reason().empty())                             \
      GTEST_SKIP() << ::kvfid::test::backend_unavailable_reason();                        \
  } while (0)

// First statement of a test that does not depend on the backend: the twin registration
// runs it, the CUDA one skips it.
#define KVFID_BACKEND_INDEPENDENT()                                                       \
  do {                                                                                    \
    if (::kvfid::test::backend_under_test() != ::kvfid::engine::Backend::twin)            \
      GTEST_SKIP() << "backend-independent: the twin registration runs it";               \
  } while (0)
