#include "tests/cuda/properties/property_check.h"

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <stdexcept>

#include "cuda/engine/engine.h"
#include "reference/synth/synthetic_model.h"
#include "reference/synth/synthetic_shapes.h"
#include "tests/common/test_env.h"

namespace kvfid::test {
using namespace kvfid::ref;  // the specification's types
using namespace kvfid::engine;  // the engine under test

namespace {

bool rc_params_set(const char* key) {
  const char* p = std::getenv("RC_PARAMS");
  return p != nullptr && std::string(p).find(std::string(key) + "=") != std::string::npos;
}

std::string probe_backend() {
  if (backend_under_test() == Backend::twin) return "";
  ModelConfig c = synthetic_shape("tiny-mqa");
  try {
    Engine probe(make_synthetic_model(c, 1), EngineOptions{Backend::cuda});
    return "";
  } catch (const BackendUnavailable& e) {
    return e.what();
  }
}

}  // namespace

Backend backend_under_test() {
  const char* name = std::getenv("KVFID_PROPERTY_BACKEND");
  const std::string v = name == nullptr ? "twin" : name;
  if (v == "twin") return Backend::twin;
  if (v == "cuda") return Backend::cuda;
  throw std::invalid_argument("KVFID_PROPERTY_BACKEND='" + v + "' is neither twin nor cuda");
}

const std::string& backend_unavailable_reason() {
  static const std::string reason = probe_backend();
  return reason;
}

rc::detail::TestParams property_params(int default_cases) {
  rc::detail::TestParams params = rc::detail::configuration().testParams;  // RC_PARAMS applied
  if (!rc_params_set("seed")) params.seed = test_seed();
  if (!rc_params_set("max_success")) {
    params.maxSuccess = default_cases;
    if (const char* n = std::getenv("KVFID_PROPERTY_CASES")) {
      const long cases = std::strtol(n, nullptr, 10);
      if (cases > 0) params.maxSuccess = int(cases);
      else ADD_FAILURE() << "KVFID_PROPERTY_CASES='" << n << "' is not a positive case count";
    }
  }
  return params;
}

void report_property(const std::string& id, const rc::detail::TestParams& params,
                     const rc::detail::TestResult& result, double seconds) {
  const std::string replay = "replay: KVFID_SEED=" + std::to_string(params.seed) +
                             " (or RC_PARAMS=\"seed=" + std::to_string(params.seed) + "\") --gtest_filter=" +
                             id.substr(0, id.find('/')) + "." + id.substr(id.find('/') + 1);
  std::printf("[property] %s on %s: seed %llu, %d cases: ", id.c_str(),
              backend_under_test() == Backend::cuda ? "cuda" : "twin", static_cast<unsigned long long>(params.seed),
              params.maxSuccess);
  if (result.is<rc::detail::SuccessResult>()) {
    const rc::detail::SuccessResult& success = result.get<rc::detail::SuccessResult>();
    std::printf("passed %d in %.2f s\n", success.numSuccess, seconds);
    for (const auto& [tags, count] : success.distribution)  // the properties' RC_CLASSIFY labels
      for (const std::string& tag : tags) std::printf("[property]   %d cases: %s\n", count, tag.c_str());
    return;
  }
  std::printf("FAILED after %.2f s\n", seconds);
  std::ostringstream message;
  rc::detail::printResultMessage(result, message);
  ADD_FAILURE() << message.str() << "\n" << replay;
}

}  // namespace kvfid::test
