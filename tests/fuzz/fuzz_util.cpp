#include "tests/fuzz/fuzz_util.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <unistd.h>

namespace kvfid::ref::fuzz {

namespace {

std::string make_dir() {
  // tools/fuzz names a folder of the run's own: a crashing input aborts before the
  // destructor below, and its scratch folder should not outlive the run there.
  const char* run = std::getenv("KVFID_FUZZ_SCRATCH");
  const char* tmp = std::getenv("TMPDIR");
  const std::string base = run && *run ? run
                           : std::filesystem::is_directory("/dev/shm") ? "/dev/shm"
                                                                      : (tmp ? tmp : "/tmp");
  std::string pattern = base + "/kvfid-fuzz-XXXXXX";
  if (!mkdtemp(pattern.data())) throw std::runtime_error("fuzz: cannot create a scratch folder under " + base);
  return pattern;
}

struct ScratchDir {
  std::string path = make_dir();
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

}  // namespace

const std::string& scratch_dir() {
  static const ScratchDir dir;
  return dir.path;
}

std::string write_scratch(const std::string& name, std::string_view bytes) {
  const std::string path = scratch_dir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  if (!out) throw std::runtime_error("fuzz: cannot write " + path);
  return path;
}

void use_sizes(const ModelConfig& config) {
  volatile std::int64_t sink = config.q_dim();
  sink = config.kv_dim();
  sink = config.group();
  sink = config.parameter_count();
  sink = std::int64_t(config.kv_bytes_per_token(16));
  sink = config.v_dim();  // latent attention's widths
  sink = config.attn_out_dim();
  sink = config.rope_head_dim();
  sink = config.cache_values_per_token();
  (void)sink;
}

ModelConfig small_config() {
  ModelConfig c;
  c.vocab = 256, c.dim = 64, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 4, c.head_dim = 16, c.hidden = 172;
  c.max_seq = 256;
  return c;
}

}  // namespace kvfid::ref::fuzz
