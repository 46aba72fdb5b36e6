#include "tests/common/generated_fixtures.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "reference/io/hf.h"
#include "reference/util/parallel_chunks.h"
#include "reference/synth/synthetic_hf.h"
#include "reference/synth/synthetic_shapes.h"
#include "tests/common/test_env.h"

namespace kvfid::test {
using namespace kvfid::ref;  // the specification's types

namespace fs = std::filesystem;

std::string ensure_model(const std::string& model_rel) {
  const fs::path path = fs::path(source_dir()) / model_rel;
  if (model_rel.rfind(kGeneratedFixtures, 0) != 0 || fs::exists(path / kHfWeightsFile)) return path.string();
  const std::string name = model_rel.substr(std::string(kGeneratedFixtures).size());
  std::ifstream in(fs::path(source_dir()) / kGeneratedFixtures / "recipes.json");
  const nlohmann::json recipes = nlohmann::json::parse(in);
  if (!recipes.contains(name)) {
    ADD_FAILURE() << "no recipe for " << name << " in " << kGeneratedFixtures << "recipes.json";
    return path.string();
  }
  const nlohmann::json& r = recipes.at(name);
  const ModelConfig full = synthetic_shape(r.at("shape").get<std::string>());
  const ModelConfig config = reduced_shape(full, r.at("layers").get<long long>(), r.at("vocab").get<long long>(), name);
  // Written atomically: tests generating the same model at once all write the same bytes.
  write_synthetic_hf(path.string(), config, full.n_layers, r.at("seed").get<std::uint64_t>(),
                     float_format_from_string(r.at("dtype").get<std::string>(), name), {.threads = hardware_threads()});
  return path.string();
}

}  // namespace kvfid::test
