#include "reference/io/llama2c.h"

#include <bit>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>

#include "reference/util/input_error.h"
#include "reference/io/mapped_file.h"
#include "reference/io/weight_checks.h"

static_assert(std::endian::native == std::endian::little, "llama2.c checkpoints are read in place as little-endian");

namespace kvfid::ref {

namespace {
namespace fs = std::filesystem;

// The values llama2.c's run.c hard-codes; the checkpoint does not store them.
constexpr double kLlama2cRmsEps = 1e-5;
constexpr double kLlama2cRopeTheta = 10000.0;

// Header values are int32 and positive, so each factor is below 2^31; products are
// checked because a garbage header can claim absurd sizes.
std::uint64_t checked_product(std::initializer_list<std::uint64_t> factors, const std::string& source) {
  std::uint64_t p = 1;
  for (std::uint64_t f : factors)
    if (__builtin_mul_overflow(p, f, &p)) throw InputError(source, "header implies an impossibly large file");
  return p;
}

Llama2cHeader read_header(const std::string& path, std::uint64_t file_bytes) {
  if (file_bytes < kLlama2cHeaderBytes)
    throw InputError(path, "not a llama2.c checkpoint: " + std::to_string(file_bytes) + " bytes is shorter than the " +
                               std::to_string(kLlama2cHeaderBytes) + "-byte header");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, "cannot open");
  std::int32_t raw[7];
  if (!in.read(reinterpret_cast<char*>(raw), sizeof raw)) throw InputError(path, "cannot read the header");
  return {raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6]};
}

std::uint64_t file_size_of(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw InputError(path, "not a regular file");
  std::uint64_t n = fs::file_size(path, ec);
  if (ec) throw InputError(path, "cannot read its size: " + ec.message());
  return n;
}

void check_size(const ModelConfig& config, std::uint64_t actual, const std::string& path) {
  const std::uint64_t expected = llama2c_file_bytes(config, path);
  if (actual != expected)
    throw InputError(path, "size " + std::to_string(actual) + " bytes disagrees with its header, which implies " +
                               std::to_string(expected) + " bytes (" + (actual < expected ? "truncated" : "trailing data") +
                               ")");
}

// Walks the float32 arrays of the mapped file in file order. Matrices become views of
// the mapping; vectors (norm weights) small float64 copies.
class Cursor {
 public:
  Cursor(std::shared_ptr<const MappedFile> file, const std::string& path) : file_(std::move(file)), path_(path) {}

  std::vector<double> take(std::size_t n, const std::string& name) {
    std::vector<double> out(n);
    for (std::size_t i = 0; i < n; ++i) {
      float f;
      std::memcpy(&f, here() + 4 * i, 4);
      out[i] = f;
    }
    offset_ += 4 * n;
    check_finite(out, path_, name);
    return out;
  }
  // `count` matrices [rows, cols] stacked in one array named `name`.
  std::vector<Matrix> take_matrices(int count, int rows, int cols, const std::string& name) {
    const std::size_t per = std::size_t(rows) * std::size_t(cols);
    std::vector<Matrix> out;
    for (int i = 0; i < count; ++i) {
      out.push_back(Matrix::view(rows, cols, WeightType::f32, here() + 4 * per * std::size_t(i), file_));
      check_finite(out.back(), path_, name, per * std::size_t(i));
    }
    offset_ += 4 * per * std::size_t(count);
    return out;
  }
  void skip(std::size_t n) { offset_ += 4 * n; }

 private:
  const std::uint8_t* here() const { return file_->data() + offset_; }
  std::shared_ptr<const MappedFile> file_;
  const std::string& path_;
  std::size_t offset_ = kLlama2cHeaderBytes;
};

void scatter(std::vector<Matrix> all, std::vector<LayerWeights>& layers, Matrix LayerWeights::*field) {
  for (std::size_t l = 0; l < layers.size(); ++l) layers[l].*field = std::move(all[l]);
}

void scatter(const std::vector<double>& all, int n, std::vector<LayerWeights>& layers,
             std::vector<double> LayerWeights::*field) {
  for (std::size_t l = 0; l < layers.size(); ++l)
    layers[l].*field = std::vector<double>(all.begin() + std::ptrdiff_t(l * n), all.begin() + std::ptrdiff_t((l + 1) * n));
}

}  // namespace

ModelConfig llama2c_config(const Llama2cHeader& h, const std::string& source) {
  auto need_positive = [&](std::int32_t v, const char* name) {
    if (v <= 0) throw InputError(source, std::string("header ") + name + " must be positive, got " + std::to_string(v));
  };
  need_positive(h.dim, "dim");
  need_positive(h.hidden_dim, "hidden_dim");
  need_positive(h.n_layers, "n_layers");
  need_positive(h.n_heads, "n_heads");
  need_positive(h.n_kv_heads, "n_kv_heads");
  need_positive(h.seq_len, "seq_len");
  if (h.vocab_size == 0 || h.vocab_size == std::numeric_limits<std::int32_t>::min())
    throw InputError(source, "header vocab_size " + std::to_string(h.vocab_size) + " is invalid");
  if (h.dim % h.n_heads != 0)
    throw InputError(source, "header dim " + std::to_string(h.dim) + " is not a multiple of n_heads " +
                                 std::to_string(h.n_heads));
  ModelConfig c;
  c.arch = Arch::llama;
  c.vocab = h.vocab_size < 0 ? -h.vocab_size : h.vocab_size;
  c.dim = h.dim;
  c.n_layers = h.n_layers;
  c.n_heads = h.n_heads;
  c.n_kv_heads = h.n_kv_heads;
  c.head_dim = h.dim / h.n_heads;
  c.hidden = h.hidden_dim;
  c.max_seq = h.seq_len;
  c.rms_norm_eps = kLlama2cRmsEps;
  c.rope_theta = kLlama2cRopeTheta;
  c.rope = RopeStyle::interleaved;
  c.tied_classifier = h.vocab_size > 0;
  c.qkv_bias = false;
  c.validate(source);  // n_heads % n_kv_heads, even head_dim
  return c;
}

std::uint64_t llama2c_file_bytes(const ModelConfig& c, const std::string& source) {
  const std::uint64_t L = std::uint64_t(c.n_layers), d = std::uint64_t(c.dim), kv = std::uint64_t(c.kv_dim());
  const std::uint64_t hid = std::uint64_t(c.hidden), vocab = std::uint64_t(c.vocab);
  std::uint64_t floats = 0;
  auto add = [&](std::initializer_list<std::uint64_t> factors) {
    if (__builtin_add_overflow(floats, checked_product(factors, source), &floats))
      throw InputError(source, "header implies an impossibly large file");
  };
  add({vocab, d});                          // token_embedding
  add({L, d});                              // rms_att
  add({L, d, d});                           // wq
  add({L, kv, d});                          // wk
  add({L, kv, d});                          // wv
  add({L, d, d});                           // wo
  add({L, d});                              // rms_ffn
  add({L, hid, d});                         // w1
  add({L, d, hid});                         // w2
  add({L, hid, d});                         // w3
  add({d});                                 // rms_final
  add({std::uint64_t(c.max_seq), std::uint64_t(c.head_dim)});  // freq_cis_real + freq_cis_imag, each half a head
  if (!c.tied_classifier) add({vocab, d});  // classifier
  return kLlama2cHeaderBytes + checked_product({floats, 4}, source);
}

ModelConfig read_llama2c_config(const std::string& path) {
  const std::uint64_t size = file_size_of(path);
  ModelConfig c = llama2c_config(read_header(path, size), path);
  check_size(c, size, path);
  return c;
}

Model read_llama2c(const std::string& path) {
  const ModelConfig c = read_llama2c_config(path);
  const std::shared_ptr<const MappedFile> file = MappedFile::open(path);
  if (file->size() != llama2c_file_bytes(c, path)) throw InputError(path, "changed while being read");

  Model m;
  m.config = c;
  m.source = path;
  const int L = c.n_layers, d = c.dim, kv = c.kv_dim(), hid = c.hidden;
  const std::size_t Ls = std::size_t(L);
  m.layers.resize(Ls);
  Cursor cur(file, path);
  m.embedding = cur.take_matrices(1, c.vocab, d, "token_embedding")[0];
  scatter(cur.take(Ls * d, "rms_att"), d, m.layers, &LayerWeights::attn_norm);
  scatter(cur.take_matrices(L, d, d, "wq"), m.layers, &LayerWeights::wq);
  scatter(cur.take_matrices(L, kv, d, "wk"), m.layers, &LayerWeights::wk);
  scatter(cur.take_matrices(L, kv, d, "wv"), m.layers, &LayerWeights::wv);
  scatter(cur.take_matrices(L, d, d, "wo"), m.layers, &LayerWeights::wo);
  scatter(cur.take(Ls * d, "rms_ffn"), d, m.layers, &LayerWeights::ffn_norm);
  scatter(cur.take_matrices(L, hid, d, "w1"), m.layers, &LayerWeights::w1);
  scatter(cur.take_matrices(L, d, hid, "w2"), m.layers, &LayerWeights::w2);
  scatter(cur.take_matrices(L, hid, d, "w3"), m.layers, &LayerWeights::w3);
  m.final_norm = cur.take(std::size_t(d), "rms_final");
  cur.skip(std::size_t(c.max_seq) * c.head_dim);  // freq_cis_real, freq_cis_imag
  m.classifier = c.tied_classifier ? m.embedding : cur.take_matrices(1, c.vocab, d, "wcls")[0];
  return m;
}

}  // namespace kvfid::ref
