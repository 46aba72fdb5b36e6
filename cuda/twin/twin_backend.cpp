// The CPU twin: every kernel of the CUDA engine executed serially, each output element
// reduced by the same cuda/common functions in the same order as its GPU thread/warp.
#include <algorithm>
#include <cstring>

#include "cuda/common/attention_math.h"
#include "cuda/common/kv_layout.h"
#include "cuda/common/log_softmax.h"
#include "cuda/common/rope.h"
#include "cuda/common/row_dot.h"
#include "cuda/engine/backend.h"
#include "cuda/engine/packed_model.h"
#include "cuda/engine/rope_table.h"
#include "reference/io/input_error.h"

namespace kvfid {
namespace {

using num::Fmt;
using num::Storage;

struct TwinSequence {
  num::KvLayout layout;
  int length = 0;
  std::vector<std::uint8_t> cache;  // KvLayout: per layer K then V
};

class TwinBackend final : public EngineBackend {
 public:
  TwinBackend(const Model& model, const EngineOptions& options)
      : m_(pack_model(model, options.weights)), kv_(to_fmt(options.kv)) {}

  int add_sequence(int capacity) override {
    const ModelConfig& c = m_.config;
    if (capacity < 1 || capacity > c.max_seq)
      throw InputError("engine", "sequence capacity " + std::to_string(capacity) + " outside [1, max_seq=" +
                                     std::to_string(c.max_seq) + "]");
    if (capacity > rope_.positions) rope_ = make_rope_table(c, capacity);
    TwinSequence s;
    s.layout = {c.n_layers, c.n_kv_heads, c.head_dim, capacity};
    s.cache.assign(s.layout.elements() * num::bytes_of(kv_), 0);
    seqs_.push_back(std::move(s));
    return int(seqs_.size()) - 1;
  }

  int fork_sequence(int source, int prefix_length, int capacity) override {
    const int id = add_sequence(capacity);
    const TwinSequence& from = seqs_[source];
    TwinSequence& to = seqs_[id];
    // Every (layer, K|V, kv head) block is [capacity, head_dim]: copy its first
    // prefix_length rows.
    const std::size_t elem = num::bytes_of(kv_), head_dim = std::size_t(from.layout.head_dim);
    const std::size_t blocks = 2 * std::size_t(from.layout.n_layers) * from.layout.n_kv_heads;
    for (std::size_t b = 0; b < blocks; ++b)
      std::memcpy(to.cache.data() + b * to.layout.capacity * head_dim * elem,
                  from.cache.data() + b * from.layout.capacity * head_dim * elem, prefix_length * head_dim * elem);
    return id;
  }

  void step(const std::vector<StepRow>& rows, bool want_taps, StepOutput& out) override {
    num::dispatch_fmt(m_.weights, [&]<Fmt W>() {
      num::dispatch_fmt(kv_, [&]<Fmt K>() { run<W, K>(rows, want_taps, out); });
    });
  }

  // One row at a time, as the GPU's one block per row.
  void log_softmax(const StepOutput& last, std::vector<float>& logprobs) override {
    const int vocab = m_.config.vocab;
    logprobs.resize(last.logits.size());
    for (std::size_t r = 0; r < last.logits.size() / vocab; ++r)
      num::log_softmax_host(last.logits.data() + r * vocab, vocab, logprobs.data() + r * vocab);
  }

 private:
  template <Fmt W, Fmt K>
  void run(const std::vector<StepRow>& rows, bool want_taps, StepOutput& out);

  PackedModel m_;
  Fmt kv_;
  RopeTable rope_;
  std::vector<TwinSequence> seqs_;
  // Step buffers, reused between steps (grown, never shrunk).
  std::vector<float> x_, xn_, q_, k_, v_, att_, proj_, h1_, h3_, stats_;
  std::vector<float> scores_, probs_, acc_, split_acc_;
};

// y[r, o] = W[o, :] . x[r, :] (+ bias[o]): one warp per (r, o) on the GPU.
template <Fmt W>
void matvec(const PackedMatrix& w, const std::vector<float>& bias, const float* x, int rows, float* y) {
  const auto* data = w.data<W>();
  for (int r = 0; r < rows; ++r)
    for (int o = 0; o < w.rows; ++o) {
      float d = num::row_dot_host<W>(data + std::size_t(o) * w.cols, x + std::size_t(r) * w.cols, w.cols);
      if (!bias.empty()) d = d + bias[o];
      y[std::size_t(r) * w.rows + o] = d;
    }
}

void rmsnorm(const float* x, const std::vector<float>& w, float eps, int rows, float* y) {
  const int n = int(w.size());
  for (int r = 0; r < rows; ++r) {
    const float* xr = x + std::size_t(r) * n;
    const float inv = num::rms_inverse(num::sum_squares_host(xr, n), n, eps);
    for (int i = 0; i < n; ++i) y[std::size_t(r) * n + i] = num::rms_apply(xr[i], inv, w[i]);
  }
}

void rope(float* v, int heads, int head_dim, bool interleaved, const RopeTable& t, int pos) {
  for (int h = 0; h < heads; ++h)
    for (int i = 0; i < t.pairs; ++i) {
      int a, b;
      num::rope_dims(interleaved, head_dim, i, a, b);
      const std::size_t ti = std::size_t(pos) * t.pairs + i;
      num::rope_pair(v[h * head_dim + a], v[h * head_dim + b], t.cos[ti], t.sin[ti]);
    }
}

template <Fmt W, Fmt K>
void TwinBackend::run(const std::vector<StepRow>& rows, bool want_taps, StepOutput& out) {
  using KT = typename Storage<K>::T;
  const ModelConfig& c = m_.config;
  const int n = int(rows.size());
  const int hd = c.head_dim, qd = c.q_dim(), kvd = c.kv_dim(), group = c.group();
  for (const StepRow& r : rows) {
    if (r.seq < 0 || r.seq >= int(seqs_.size())) throw InputError("engine", "unknown sequence id");
    if (r.pos >= seqs_[r.seq].layout.capacity) throw InputError("engine", "sequence capacity exceeded");
    if (r.token < 0 || r.token >= c.vocab) throw InputError("engine", "token id outside the vocabulary");
  }
  auto grow = [](std::vector<float>& b, std::size_t size) {
    if (b.size() < size) b.resize(size);
  };
  grow(x_, std::size_t(n) * c.dim);
  grow(xn_, std::size_t(n) * c.dim);
  grow(q_, std::size_t(n) * qd);
  grow(k_, std::size_t(n) * kvd);
  grow(v_, std::size_t(n) * kvd);
  grow(att_, std::size_t(n) * qd);
  grow(proj_, std::size_t(n) * c.dim);
  grow(h1_, std::size_t(n) * c.hidden);
  grow(h3_, std::size_t(n) * c.hidden);
  grow(stats_, std::size_t(n) * c.n_heads * 2);
  grow(scores_, num::kSplit);
  grow(probs_, num::kSplit);
  grow(acc_, hd);
  grow(split_acc_, hd);
  out.layers.resize(want_taps ? c.n_layers : 0);  // kept between steps: assign() reuses capacity

  // Embedding: the token's row, decoded to FP32.
  const auto* emb = m_.embedding.data<W>();
  for (int r = 0; r < n; ++r)
    for (int i = 0; i < c.dim; ++i)
      x_[std::size_t(r) * c.dim + i] = Storage<W>::load(emb[std::size_t(rows[r].token) * c.dim + i]);

  const bool interleaved = c.rope == RopeStyle::interleaved;
  for (int l = 0; l < c.n_layers; ++l) {
    const PackedLayer& w = m_.layers[l];
    rmsnorm(x_.data(), w.attn_norm, m_.eps, n, xn_.data());
    matvec<W>(w.wq, w.bq, xn_.data(), n, q_.data());
    matvec<W>(w.wk, w.bk, xn_.data(), n, k_.data());
    matvec<W>(w.wv, w.bv, xn_.data(), n, v_.data());
    // RoPE, then K and V into the cache; the taps read K and V back from the cache.
    for (int r = 0; r < n; ++r) {
      rope(q_.data() + std::size_t(r) * qd, c.n_heads, hd, interleaved, rope_, rows[r].pos);
      rope(k_.data() + std::size_t(r) * kvd, c.n_kv_heads, hd, interleaved, rope_, rows[r].pos);
      TwinSequence& s = seqs_[rows[r].seq];
      KT* kc = reinterpret_cast<KT*>(s.cache.data()) + s.layout.k_offset(l);
      KT* vc = reinterpret_cast<KT*>(s.cache.data()) + s.layout.v_offset(l);
      for (int h = 0; h < c.n_kv_heads; ++h)
        for (int d = 0; d < hd; ++d) {
          const std::size_t at = s.layout.row(h, rows[r].pos) + d;
          kc[at] = Storage<K>::store(k_[std::size_t(r) * kvd + h * hd + d]);
          vc[at] = Storage<K>::store(v_[std::size_t(r) * kvd + h * hd + d]);
          k_[std::size_t(r) * kvd + h * hd + d] = Storage<K>::load(kc[at]);
          v_[std::size_t(r) * kvd + h * hd + d] = Storage<K>::load(vc[at]);
        }
    }
    // Attention (attention_math.h): per row and query head, splits folded in order.
    for (int r = 0; r < n; ++r) {
      const TwinSequence& s = seqs_[rows[r].seq];
      const KT* kc = reinterpret_cast<const KT*>(s.cache.data()) + s.layout.k_offset(l);
      const KT* vc = reinterpret_cast<const KT*>(s.cache.data()) + s.layout.v_offset(l);
      const int keys = rows[r].pos + 1;
      for (int h = 0; h < c.n_heads; ++h) {
        const int kvh = h / group;
        const float* q = q_.data() + std::size_t(r) * qd + h * hd;
        num::SoftmaxStats run{};
        for (int sp = 0; sp < num::split_count(keys); ++sp) {
          const int j0 = sp * num::kSplit, j1 = std::min(j0 + num::kSplit, keys);
          for (int j = j0; j < j1; ++j)
            scores_[j - j0] = num::attn_score<K>(q, kc + s.layout.row(kvh, j), hd, m_.attn_scale);
          // Max and sum: butterfly per warp of 32 keys (padding: -inf for the max, +0
          // for the sum, the values idle GPU lanes hold), then warps in order. Warps
          // wholly past j1 only contribute those identities, so they are skipped.
          float lanes[num::kWarp];
          float m = 0, lsum = 0;
          for (int wj = 0; wj * num::kWarp < j1 - j0; ++wj) {
            for (int i = 0; i < num::kWarp; ++i) {
              const int j = wj * num::kWarp + i;
              lanes[i] = j < j1 - j0 ? scores_[j] : -num::infinity();
            }
            const float wm = num::butterfly_host<num::Max>(lanes);
            m = wj == 0 ? wm : num::max(m, wm);
          }
          for (int j = 0; j < j1 - j0; ++j) probs_[j] = num::exp_portable(scores_[j] - m);
          for (int wj = 0; wj * num::kWarp < j1 - j0; ++wj) {
            for (int i = 0; i < num::kWarp; ++i) {
              const int j = wj * num::kWarp + i;
              lanes[i] = j < j1 - j0 ? probs_[j] : 0.0f;
            }
            const float ws = num::butterfly_host<num::Add>(lanes);
            lsum = wj == 0 ? ws : lsum + ws;
          }
          for (int d = 0; d < hd; ++d) {
            float a = 0.0f;
            for (int j = j0; j < j1; ++j) a = num::fma(probs_[j - j0], Storage<K>::load(vc[s.layout.row(kvh, j) + d]), a);
            split_acc_[d] = a;
          }
          if (sp == 0) {
            run = {m, lsum};
            std::copy_n(split_acc_.data(), hd, acc_.data());
          } else {
            const num::FoldFactors f = num::fold_factors(run.m, m);
            for (int d = 0; d < hd; ++d) acc_[d] = num::fold_value(acc_[d], split_acc_[d], f);
            run = {f.m, num::fold_value(run.l, lsum, f)};
          }
        }
        for (int d = 0; d < hd; ++d) att_[std::size_t(r) * qd + h * hd + d] = num::div(acc_[d], run.l);
        stats_[(std::size_t(r) * c.n_heads + h) * 2] = run.m;
        stats_[(std::size_t(r) * c.n_heads + h) * 2 + 1] = run.l;
      }
    }
    matvec<W>(w.wo, {}, att_.data(), n, proj_.data());
    for (std::size_t i = 0; i < std::size_t(n) * c.dim; ++i) x_[i] = x_[i] + proj_[i];
    rmsnorm(x_.data(), w.ffn_norm, m_.eps, n, xn_.data());
    matvec<W>(w.w1, {}, xn_.data(), n, h1_.data());
    matvec<W>(w.w3, {}, xn_.data(), n, h3_.data());
    for (std::size_t i = 0; i < std::size_t(n) * c.hidden; ++i) h1_[i] = num::silu(h1_[i]) * h3_[i];
    matvec<W>(w.w2, {}, h1_.data(), n, proj_.data());
    for (std::size_t i = 0; i < std::size_t(n) * c.dim; ++i) x_[i] = x_[i] + proj_[i];
    if (want_taps) {
      LayerTaps& t = out.layers[l];
      t.q.assign(q_.begin(), q_.begin() + std::size_t(n) * qd);
      t.k.assign(k_.begin(), k_.begin() + std::size_t(n) * kvd);
      t.v.assign(v_.begin(), v_.begin() + std::size_t(n) * kvd);
      t.stats.assign(stats_.begin(), stats_.begin() + std::size_t(n) * c.n_heads * 2);
      t.attn_out.assign(att_.begin(), att_.begin() + std::size_t(n) * qd);
      t.out.assign(x_.begin(), x_.begin() + std::size_t(n) * c.dim);
    }
  }
  rmsnorm(x_.data(), m_.final_norm, m_.eps, n, xn_.data());
  out.logits.resize(std::size_t(n) * c.vocab);
  matvec<W>(m_.classifier, {}, xn_.data(), n, out.logits.data());
}

}  // namespace

std::unique_ptr<EngineBackend> make_twin_backend(const Model& model, const EngineOptions& options) {
  return std::make_unique<TwinBackend>(model, options);
}

}  // namespace kvfid
