#include "reference/model/rope_permute.h"

#include <algorithm>
#include <cmath>

#include <gtest/gtest.h>

#include "reference/synth/synthetic_model.h"
#include "reference/synth/synthetic_shapes.h"
#include "tests/common/model_files.h"
#include "tests/common/test_env.h"

namespace kvfid::ref {
namespace {

// y = W x + b in plain double. [rows]
std::vector<double> project(const Matrix& w, const std::vector<double>& b, const std::vector<double>& x) {
  std::vector<double> y(std::size_t(w.rows), 0.0);
  for (int r = 0; r < w.rows; ++r) {
    double s = b.empty() ? 0.0 : b[std::size_t(r)];
    for (int c = 0; c < w.cols; ++c) s += w.at(r, c) * x[std::size_t(c)];
    y[std::size_t(r)] = s;
  }
  return y;
}

// Rotates the pair (v[a], v[b]) of every head by pos * theta^(-2i/head_dim); the two
// styles differ only in which indices a, b form pair i.
void rope(std::vector<double>& v, int n_heads, int head_dim, int pos, double theta, bool interleaved) {
  for (int h = 0; h < n_heads; ++h)
    for (int i = 0; i < head_dim / 2; ++i) {
      const double angle = pos * std::pow(theta, -2.0 * i / head_dim);
      const std::size_t a = std::size_t(h * head_dim + (interleaved ? 2 * i : i));
      const std::size_t b = std::size_t(h * head_dim + (interleaved ? 2 * i + 1 : i + head_dim / 2));
      const double x0 = v[a], x1 = v[b];
      v[a] = x0 * std::cos(angle) - x1 * std::sin(angle);
      v[b] = x0 * std::sin(angle) + x1 * std::cos(angle);
    }
}

// The rotated permuted projection must be the rotated original with element 2i of each
// head at i and 2i+1 at i + head_dim/2. Equality is exact: the permuted rows hold the
// same values, so every product, sum and rotation is the same double operation.
void expect_rope_equivalent(const Matrix& w, const std::vector<double>& b, const Matrix& pw,
                            const std::vector<double>& pb, int n_heads, const ModelConfig& c,
                            const std::vector<double>& x, const std::string& what) {
  for (int pos : {0, 1, 7, 31}) {
    std::vector<double> original = project(w, b, x), permuted = project(pw, pb, x);
    rope(original, n_heads, c.head_dim, pos, c.rope_theta, true);
    rope(permuted, n_heads, c.head_dim, pos, c.rope_theta, false);
    for (int h = 0; h < n_heads; ++h)
      for (int i = 0; i < c.head_dim / 2; ++i) {
        const std::size_t base = std::size_t(h * c.head_dim);
        ASSERT_EQ(permuted[base + i], original[base + 2 * i]) << what << " head " << h << " pair " << i << " pos " << pos;
        ASSERT_EQ(permuted[base + i + c.head_dim / 2], original[base + 2 * i + 1])
            << what << " head " << h << " pair " << i << " pos " << pos;
      }
  }
}

void check_permutation(const ModelConfig& config) {
  SCOPED_TRACE(test::seed_trace());
  const Model m = make_synthetic_model(config, test::test_seed());
  const Model p = permute_to_rotate_half(m);
  EXPECT_EQ(p.config.rope, RopeStyle::rotate_half);

  std::vector<double> x(std::size_t(config.dim));  // [dim], uniform in [-1, 1)
  std::uint64_t s = test::test_seed();
  for (double& v : x) v = double((s = s * 6364136223846793005ull + 1442695040888963407ull) >> 11) * 0x1.0p-52 - 1.0;

  for (std::size_t l = 0; l < m.layers.size(); ++l) {
    const LayerWeights &a = m.layers[l], &b = p.layers[l];
    expect_rope_equivalent(a.wq, a.bq, b.wq, b.bq, config.n_heads, config, x, "q layer " + std::to_string(l));
    expect_rope_equivalent(a.wk, a.bk, b.wk, b.bk, config.n_kv_heads, config, x, "k layer " + std::to_string(l));
    // Gross check: the permutation moved rows rather than keeping the identity.
    EXPECT_NE(a.wq.values(), b.wq.values());
    EXPECT_EQ(a.wv.values(), b.wv.values());
    EXPECT_EQ(a.bv, b.bv);
    EXPECT_EQ(a.wo.values(), b.wo.values());
    EXPECT_EQ(a.w1.values(), b.w1.values());
  }
  // Permuting again is the identity on a rotate-half model.
  test::expect_same_model(p, permute_to_rotate_half(p));
}

TEST(RopePermute, GroupedQueryModelMatchesInterleavedRope) { check_permutation(test::tiny_llama2c_config(true)); }

TEST(RopePermute, BiasedQwen2ShapeMatchesInterleavedRope) {
  ModelConfig c = synthetic_shape("tiny-qwen2");
  c.rope = RopeStyle::interleaved;
  check_permutation(c);
}

TEST(RopePermute, PositionMapIsABijectionPerHead) {
  for (int head_dim : {2, 8, 16, 128}) {
    std::vector<int> dest;
    for (int r = 0; r < head_dim; ++r) dest.push_back(rotate_half_position(r, head_dim));
    std::sort(dest.begin(), dest.end());
    for (int r = 0; r < head_dim; ++r) EXPECT_EQ(dest[std::size_t(r)], r) << "head_dim " << head_dim;
  }
  EXPECT_EQ(rotate_half_position(0, 8), 0);
  EXPECT_EQ(rotate_half_position(1, 8), 4);
  EXPECT_EQ(rotate_half_position(6, 8), 3);
  EXPECT_EQ(rotate_half_position(7, 8), 7);
}

}  // namespace
}  // namespace kvfid::ref
