#include "tests/common/test_env.h"

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <unistd.h>

#include "reference/io/prompt.h"

namespace kvfid::test {
namespace fs = std::filesystem;

std::string source_dir() { return KVFID_SOURCE_DIR; }
std::string fixtures_dir() { return source_dir() + "/fixtures"; }

std::vector<int> fixture_prompt(const std::string& name) {
  return ref::read_prompt_file(fixtures_dir() + "/prompts/" + name + ".tokens");
}
std::string golden_dir() { return source_dir() + "/golden"; }

std::string kvfid_binary() {
  const char* bin = std::getenv("KVFID_BIN");
  return bin ? bin : "kvfid";
}

std::string scratch_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("kvfid-test-" + std::to_string(::getpid())) / name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

std::optional<std::string> stories260k_path() {
  fs::path p = fs::path(source_dir()).parent_path() / "shared" / "models" / "stories260K.bin";
  if (fs::exists(p)) return p.string();
  return std::nullopt;
}

std::string param_name(const std::string& label) {
  std::string name = label;
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return name;
}

std::uint64_t test_seed() {
  if (const char* s = std::getenv("KVFID_SEED")) return std::strtoull(s, nullptr, 0);
  return kDefaultSeed;
}

std::string seed_trace() { return "seed " + std::to_string(test_seed()) + " (replay with KVFID_SEED=" +
                                  std::to_string(test_seed()) + ")"; }

}  // namespace kvfid::test
