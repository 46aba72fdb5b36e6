#include "reference/io/gguf_model.h"

#include <set>

#include "reference/formats/quant/registry.h"
#include "reference/util/input_error.h"

namespace kvfid::ref {

namespace {

class Meta {
 public:
  explicit Meta(const GgufFile& f) : f_(f) {}

  const GgufValue* find(const std::string& key) const { return f_.find(key); }
  std::string text(const std::string& key) const {
    const GgufValue* v = need(key);
    if (const std::string* s = std::get_if<std::string>(&v->v)) return *s;
    bad(key, "a string");
  }
  std::uint64_t count(const std::string& key, std::optional<std::uint64_t> fallback = std::nullopt) const {
    const GgufValue* v = fallback && !find(key) ? nullptr : need(key);
    if (!v) return *fallback;
    if (const std::uint64_t* u = std::get_if<std::uint64_t>(&v->v)) return *u;
    if (const std::int64_t* i = std::get_if<std::int64_t>(&v->v); i && *i >= 0) return std::uint64_t(*i);
    bad(key, "a non-negative integer");
  }
  double number(const std::string& key, std::optional<double> fallback = std::nullopt) const {
    const GgufValue* v = fallback && !find(key) ? nullptr : need(key);
    if (!v) return *fallback;
    if (const double* d = std::get_if<double>(&v->v)) return *d;
    bad(key, "a float");
  }

 private:
  const GgufValue* need(const std::string& key) const {
    const GgufValue* v = find(key);
    if (!v) throw InputError(f_.path, "metadata '" + key + "' is missing");
    return v;
  }
  [[noreturn]] void bad(const std::string& key, const char* what) const {
    throw InputError(f_.path, "metadata '" + key + "' is not " + what);
  }
  const GgufFile& f_;
};

int as_int(const GgufFile& f, const std::string& what, std::uint64_t v) {
  if (v == 0 || v > (std::uint64_t(1) << 30)) throw InputError(f.path, what + " of " + std::to_string(v) + " is out of range");
  return int(v);
}

const GgufTensor& tensor(const GgufFile& f, const std::string& name, std::vector<std::uint64_t> dims) {
  const auto it = f.tensors.find(name);
  if (it == f.tensors.end()) throw InputError(f.path, "tensor '" + name + "' is missing");
  if (it->second.dims != dims) {
    std::string want;
    for (std::uint64_t d : dims) want += (want.empty() ? "" : ", ") + std::to_string(d);
    throw InputError(f.path, "tensor '" + name + "' has the wrong shape (ggml order [" + want + "] expected)");
  }
  return it->second;
}

// A weight matrix [rows, cols]: ggml dims [cols, rows].
Matrix matrix(const GgufFile& f, const std::string& name, int rows, int cols) {
  const GgufTensor& t = tensor(f, name, {std::uint64_t(cols), std::uint64_t(rows)});
  switch (t.type) {
    case GgmlType::f32: return Matrix::view(rows, cols, WeightType::f32, t.data, f.mapping);
    case GgmlType::f16: return Matrix::view(rows, cols, WeightType::f16, t.data, f.mapping);
    case GgmlType::bf16: return Matrix::view(rows, cols, WeightType::bf16, t.data, f.mapping);
    case GgmlType::q8_0: return Matrix::blocks_view(rows, cols, quant::format_by_name("q8_0", f.path).index, t.data, f.mapping);
    case GgmlType::q4_0: return Matrix::blocks_view(rows, cols, quant::format_by_name("q4_0", f.path).index, t.data, f.mapping);
  }
  throw InputError(f.path, "tensor '" + name + "' has an unsupported type");
}

// A vector [n] (norm weights, biases): a float type, decoded exactly.
std::vector<double> vector(const GgufFile& f, const std::string& name, int n) {
  const GgufTensor& t = tensor(f, name, {std::uint64_t(n)});
  switch (t.type) {
    case GgmlType::f32: return Matrix::view(1, n, WeightType::f32, t.data, f.mapping).values();
    case GgmlType::f16: return Matrix::view(1, n, WeightType::f16, t.data, f.mapping).values();
    case GgmlType::bf16: return Matrix::view(1, n, WeightType::bf16, t.data, f.mapping).values();
    case GgmlType::q8_0:
    case GgmlType::q4_0: break;
  }
  throw InputError(f.path, "tensor '" + name + "' is a vector in a block format; kvfid reads F32, F16 or BF16 there");
}

std::string layer(int l, const char* what) { return "blk." + std::to_string(l) + "." + what; }

}  // namespace

ModelConfig gguf_config(const GgufFile& f) {
  const Meta m(f);
  const std::string arch = m.text("general.architecture");
  if (arch != "llama" && arch != "qwen2" && arch != "qwen3")
    throw InputError(f.path, "architecture '" + arch + "' is not supported (llama, qwen2, qwen3)");
  if (const GgufValue* s = m.find(arch + ".rope.scaling.type")) {
    const std::string* type = std::get_if<std::string>(&s->v);
    if (!type || *type != "none")
      throw InputError(f.path, "rope scaling '" + (type ? *type : std::string("?")) + "' is not supported");
  }
  // llama.cpp's converter stores Llama 3's rope_scaling as per-pair frequency factors.
  if (f.tensors.count("rope_freqs.weight"))
    throw InputError(f.path, "tensor 'rope_freqs.weight' (Llama 3 RoPE scaling factors) is not supported in GGUF; "
                             "load the model's Hugging Face folder, whose rope_scaling kvfid implements");
  ModelConfig c;
  c.arch = arch == "llama" ? Arch::llama : arch == "qwen2" ? Arch::qwen2 : Arch::qwen3;
  c.dim = as_int(f, "embedding_length", m.count(arch + ".embedding_length"));
  c.n_layers = as_int(f, "block_count", m.count(arch + ".block_count"));
  c.hidden = as_int(f, "feed_forward_length", m.count(arch + ".feed_forward_length"));
  c.n_heads = as_int(f, "head_count", m.count(arch + ".attention.head_count"));
  c.n_kv_heads = as_int(f, "head_count_kv", m.count(arch + ".attention.head_count_kv", std::uint64_t(c.n_heads)));
  c.head_dim = as_int(f, "key_length", m.count(arch + ".attention.key_length", std::uint64_t(c.dim / c.n_heads)));
  if (m.find(arch + ".attention.value_length") && m.count(arch + ".attention.value_length") != std::uint64_t(c.head_dim))
    throw InputError(f.path, "attention.value_length differs from key_length; kvfid needs them equal");
  if (m.find(arch + ".rope.dimension_count") && m.count(arch + ".rope.dimension_count") != std::uint64_t(c.head_dim))
    throw InputError(f.path, "rope.dimension_count differs from the head dimension (partial rotary is not supported)");
  c.max_seq = as_int(f, "context_length", m.count(arch + ".context_length"));
  c.rms_norm_eps = m.number(arch + ".attention.layer_norm_rms_epsilon");
  c.rope_theta = m.number(arch + ".rope.freq_base", 10000.0);
  c.rope = c.arch == Arch::llama ? RopeStyle::interleaved : RopeStyle::rotate_half;
  const auto embd = f.tensors.find("token_embd.weight");
  if (embd == f.tensors.end() || embd->second.dims.size() != 2) throw InputError(f.path, "tensor 'token_embd.weight' is missing or not 2-D");
  c.vocab = as_int(f, "vocabulary", embd->second.dims[1]);
  c.tied_classifier = !f.tensors.count("output.weight");
  c.qkv_bias = f.tensors.count(layer(0, "attn_q.bias")) != 0;
  c.qk_norm = c.arch == Arch::qwen3;  // blk.N.attn_q_norm / attn_k_norm, [head_dim] each
  c.validate(f.path);
  return c;
}

Model read_gguf_model(const std::string& path) {
  const GgufFile f = read_gguf(path);
  Model m;
  m.config = gguf_config(f);
  const ModelConfig& c = m.config;
  std::set<std::string> used = {"token_embd.weight", "output_norm.weight"};
  m.embedding = matrix(f, "token_embd.weight", c.vocab, c.dim);
  m.final_norm = vector(f, "output_norm.weight", c.dim);
  if (c.tied_classifier) {
    m.classifier = m.embedding;
  } else {
    m.classifier = matrix(f, "output.weight", c.vocab, c.dim);
    used.insert("output.weight");
  }
  for (int l = 0; l < c.n_layers; ++l) {
    LayerWeights w;
    auto mat = [&](const char* what, int rows, int cols) {
      used.insert(layer(l, what));
      return matrix(f, layer(l, what), rows, cols);
    };
    auto vec = [&](const char* what, int n) {
      used.insert(layer(l, what));
      return vector(f, layer(l, what), n);
    };
    w.attn_norm = vec("attn_norm.weight", c.dim);
    w.wq = mat("attn_q.weight", c.q_dim(), c.dim);
    w.wk = mat("attn_k.weight", c.kv_dim(), c.dim);
    w.wv = mat("attn_v.weight", c.kv_dim(), c.dim);
    if (c.qkv_bias) {
      w.bq = vec("attn_q.bias", c.q_dim());
      w.bk = vec("attn_k.bias", c.kv_dim());
      w.bv = vec("attn_v.bias", c.kv_dim());
    }
    if (c.qk_norm) {
      w.q_norm = vec("attn_q_norm.weight", c.head_dim);
      w.k_norm = vec("attn_k_norm.weight", c.head_dim);
    }
    w.wo = mat("attn_output.weight", c.dim, c.q_dim());
    w.ffn_norm = vec("ffn_norm.weight", c.dim);
    w.w1 = mat("ffn_gate.weight", c.hidden, c.dim);
    w.w3 = mat("ffn_up.weight", c.hidden, c.dim);
    w.w2 = mat("ffn_down.weight", c.dim, c.hidden);
    m.layers.push_back(std::move(w));
  }
  for (const auto& [name, t] : f.tensors)
    if (!used.count(name))
      throw InputError(path, "tensor '" + name + "' has no place in a " + to_string(c.arch) +
                                 " model as kvfid reads it (not supported)");
  return m;
}

ModelConfig read_gguf_config(const std::string& path) { return gguf_config(read_gguf(path)); }

}  // namespace kvfid::ref
