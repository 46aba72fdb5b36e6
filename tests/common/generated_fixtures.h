#pragma once
// Models too large to commit (reduced real shapes) are generated on demand from the
// recipes in fixtures/generated/recipes.json, into fixtures/generated/NAME (ignored by
// git). The generation is deterministic, and every golden made from such a model
// records its sha256, so a regenerated model is checked to be the same one.
#include <string>

namespace kvfid::test {

inline constexpr const char* kGeneratedFixtures = "fixtures/generated/";

// For a model path relative to the project root: under fixtures/generated/, writes the
// model from its recipe unless already there (fails the test when it has no recipe);
// any other path is left alone. Returns the absolute path.
std::string ensure_model(const std::string& model_rel);

}  // namespace kvfid::test
