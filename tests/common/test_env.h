#pragma once
// What every test needs from its surroundings: where the sources, fixtures and the
// shared real model are, and the seed for anything random.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kvfid::test {

std::string source_dir();           // the project root
std::string fixtures_dir();         // <root>/fixtures
std::string golden_dir();           // <root>/golden
std::string kvfid_binary();         // the built CLI (KVFID_BIN, set by ctest)
std::string scratch_dir(const std::string& name);  // a fresh empty folder under the build tree's tmp
std::vector<int> fixture_prompt(const std::string& name);  // the tokens of fixtures/prompts/NAME.tokens

// ../shared/models/stories260K.bin beside the project root, when present.
std::optional<std::string> stories260k_path();
inline constexpr const char* kStoriesMissing =
    "stories260K.bin not found at ../shared/models/ beside the project root; "
    "this test needs the real model (a fresh clone has no ../shared)";

// Seed for randomized tests: KVFID_SEED overrides the fixed default. Tests print it
// on failure (SCOPED_TRACE(seed_trace())) so any failure can be replayed.
// A gtest parameter name from a label such as "tiny-qwen2" (gtest allows [A-Za-z0-9_]).
std::string param_name(const std::string& label);

inline constexpr std::uint64_t kDefaultSeed = 20261123;
std::uint64_t test_seed();
std::string seed_trace();

}  // namespace kvfid::test
