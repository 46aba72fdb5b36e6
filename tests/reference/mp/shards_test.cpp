// Shards (reference/mp/shards.h): the block split, the bit-exact transfer of MPFR
// numbers, the exchange, and the property the MPI golden rests on: the golden computed
// by 2, 3 or 5 cooperating ranks (here threads, each a rank with its own Shards) is
// bit for bit the single-process golden, for odd shapes, GQA 7:1 with biases, a stored
// KV policy and the emulated arithmetic. The real MPI launch: tests/tools/kvfid/golden_ranks_test.cpp.
#include "reference/mp/shards.h"

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <limits>
#include <memory>
#include <thread>

#include <gtest/gtest.h>

#include "reference/calibration/kv_policy_fit.h"
#include "reference/mp/enclosure.h"
#include "reference/mp/golden_forward.h"
#include "reference/mp/mp_forward.h"
#include "reference/mp/mp_weights.h"
#include "reference/synth/synthetic_model.h"
#include "reference/synth/synthetic_shapes.h"
#include "tests/common/test_env.h"
#include "tests/reference/mp/mp_test_util.h"

namespace kvfid::ref {
namespace {

// N ranks in one process: allgather is a board every rank writes its block to, between
// two barriers (the second keeps a fast rank from overwriting a block still being read).
// Ranks that diverge (one leaves the forward while another waits at an exchange) would
// wait forever: a wait longer than kPatience fails instead.
constexpr std::chrono::seconds kPatience{30};

class Board {
 public:
  explicit Board(int ranks) : ranks_(ranks), blocks_(static_cast<std::size_t>(ranks)) {}
  std::vector<std::vector<std::byte>> allgather(int rank, const std::vector<std::byte>& mine) {
    blocks_[std::size_t(rank)] = mine;
    wait_for_all();
    std::vector<std::vector<std::byte>> all = blocks_;
    wait_for_all();
    return all;
  }

 private:
  void wait_for_all() {
    std::unique_lock<std::mutex> lock(mutex_);
    const long generation = generation_;
    if (++arrived_ == ranks_) {
      arrived_ = 0, ++generation_;
      all_arrived_.notify_all();
      return;
    }
    if (!all_arrived_.wait_for(lock, kPatience, [&] { return generation_ != generation; }))
      throw std::runtime_error("a rank waited at an exchange the others never reached: the ranks diverged");
  }
  const int ranks_;
  std::vector<std::vector<std::byte>> blocks_;
  std::mutex mutex_;
  std::condition_variable all_arrived_;
  int arrived_ = 0;
  long generation_ = 0;
};

class LocalShards final : public Shards {
 public:
  LocalShards(Board& board, int rank, int ranks) : board_(board), rank_(rank), ranks_(ranks) {}
  int rank() const override { return rank_; }
  int ranks() const override { return ranks_; }
  int exchanges = 0;
  std::size_t bytes_sent = 0;

 protected:
  std::vector<std::vector<std::byte>> allgather(const std::vector<std::byte>& mine) override {
    ++exchanges;
    bytes_sent += mine.size();
    return board_.allgather(rank_, mine);
  }

 private:
  Board& board_;
  int rank_, ranks_;
};

// Runs body(shards) on `ranks` threads, one rank each; returns each rank's result.
template <class Result, class Body>
std::vector<Result> on_ranks(int ranks, Body body) {
  Board board(ranks);
  std::vector<Result> results(static_cast<std::size_t>(ranks));
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r)
    threads.emplace_back([&, r] {
      LocalShards shards(board, r, ranks);
      try {
        results[std::size_t(r)] = body(shards);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "rank " << r << " of " << ranks << ": " << e.what();
      }
      mpfr_free_cache2(MPFR_FREE_LOCAL_CACHE);  // this thread's constants, as mp_parallel's workers do
    });
  for (std::thread& t : threads) t.join();
  return results;
}

TEST(Shards, BlocksCoverEveryItemOnceInOrder) {
  for (std::int64_t n : {0, 1, 2, 7, 13, 64, 151936})
    for (int ranks = 1; ranks <= 7; ++ranks) {
      std::int64_t next = 0, smallest = n, largest = 0;
      for (int r = 0; r < ranks; ++r) {
        const ItemRange s = share_of(n, r, ranks);
        ASSERT_EQ(s.begin, next) << n << " items, rank " << r << " of " << ranks;
        ASSERT_LE(s.begin, s.end);
        smallest = std::min(smallest, s.end - s.begin), largest = std::max(largest, s.end - s.begin);
        next = s.end;
      }
      EXPECT_EQ(next, n);
      EXPECT_LE(largest - smallest, 1) << n << " items over " << ranks << " ranks";
    }
  EXPECT_THROW(share_of(5, 3, 3), std::logic_error);
  EXPECT_THROW(share_of(5, -1, 3), std::logic_error);
  EXPECT_THROW(share_of(5, 0, 0), std::logic_error);
}

// Every kind of number, at precisions on and off limb boundaries, comes back with the
// same bits: value, sign (of zeros too), NaN-ness and precision.
TEST(Shards, NumbersTravelBitForBit) {
  for (mpfr_prec_t precision : {2, 53, 64, 65, 128, 192, 200}) {
    MpArray in(9, precision), out(9, precision);
    mpfr_set_zero(in[0], 1);
    mpfr_set_zero(in[1], -1);
    mpfr_set_inf(in[2], 1);
    mpfr_set_inf(in[3], -1);
    mpfr_set_nan(in[4]);
    mpfr_const_pi(in[5], MPFR_RNDN);
    mpfr_set_si_2exp(in[6], -3, -1000, MPFR_RNDN);
    mpfr_const_log2(in[7], MPFR_RNDN);
    mpfr_mul_2si(in[7], in[7], 4000, MPFR_RNDN);
    mpfr_set_d(in[8], -std::numeric_limits<double>::denorm_min(), MPFR_RNDN);
    for (std::size_t i = 0; i < in.size(); ++i) mpfr_set_d(out[i], 12345.0, MPFR_RNDN);  // overwritten below
    std::vector<std::byte> bytes(record_bytes(precision) * in.size());
    for (std::size_t i = 0; i < in.size(); ++i) pack_number(bytes.data() + i * record_bytes(precision), in[i]);
    for (std::size_t i = 0; i < in.size(); ++i) unpack_number(out[i], bytes.data() + i * record_bytes(precision));
    for (std::size_t i = 0; i < in.size(); ++i) {
      SCOPED_TRACE("precision " + std::to_string(precision) + ", element " + std::to_string(i));
      EXPECT_EQ(mpfr_get_prec(out[i]), precision);
      if (mpfr_nan_p(in[i])) {
        EXPECT_TRUE(mpfr_nan_p(out[i]));
        continue;
      }
      EXPECT_TRUE(mpfr_equal_p(in[i], out[i]));
      EXPECT_EQ(mpfr_signbit(in[i]), mpfr_signbit(out[i]));
    }
  }
}

// Each rank fills only its runs (with values no other rank could guess); after the
// exchange every rank holds every run, and elements in no run are left alone.
TEST(Shards, ExchangeGivesEveryRankEveryRun) {
  constexpr std::size_t kSize = 40;
  for (int ranks : {1, 2, 3, 5}) {
    // Rank r owns two scattered runs; element 39 belongs to nobody.
    auto runs = [ranks](int r) {
      const ItemRange s = share_of(38, r, ranks);
      const std::size_t half = std::size_t(s.begin + s.end) / 2;
      return std::vector<ElementRun>{{std::size_t(s.begin), half - std::size_t(s.begin)},
                                     {half, std::size_t(s.end) - half}};
    };
    const std::vector<std::vector<double>> seen = on_ranks<std::vector<double>>(ranks, [&](LocalShards& shards) {
      MpArray a(kSize, 96);
      for (std::size_t i = 0; i < kSize; ++i) mpfr_set_si(a[i], -1, MPFR_RNDN);
      for (const ElementRun& run : runs(shards.rank()))
        for (std::size_t i = run.begin; i < run.begin + run.count; ++i) {
          mpfr_set_ui(a[i], i + 1, MPFR_RNDN);
          mpfr_div_ui(a[i], a[i], 3, MPFR_RNDN);  // inexact: the low limbs must travel too
        }
      shards.exchange(a, runs);
      std::vector<double> v;
      for (std::size_t i = 0; i < kSize; ++i) {
        mpfr_mul_ui(a[i], a[i], 3, MPFR_RNDN);
        v.push_back(mpfr_get_d(a[i], MPFR_RNDN));
      }
      return v;
    });
    for (int r = 0; r < ranks; ++r)
      for (std::size_t i = 0; i < kSize; ++i) {
        const double expected = i < 38 ? double(i + 1) : -3.0;
        ASSERT_EQ(seen[std::size_t(r)][i], expected) << "rank " << r << " of " << ranks << ", element " << i;
      }
  }
}

TEST(Shards, ExchangeRefusesARunOutsideTheArray) {
  on_ranks<int>(2, [](LocalShards& shards) {
    MpArray a(4, 64);
    EXPECT_THROW(shards.exchange(a, [](int) { return std::vector<ElementRun>{{3, 2}}; }), std::logic_error);
    return 0;
  });
}

struct ShardCase {
  const char* label;
  ModelConfig config;
  std::vector<int> tokens;
  const char* kv;  // stored KV policy of the golden, or "" for the exact cache
};

ModelConfig odd_config() {
  // Every dimension prime or odd, so no split is even and blocks differ in size.
  ModelConfig c = test::tiny_config(2);
  c.vocab = 37, c.dim = 14, c.n_heads = 3, c.n_kv_heads = 1, c.head_dim = 6, c.hidden = 23;
  return c;
}

std::vector<ShardCase> shard_cases() {
  return {{"odd_sizes", odd_config(), {3, 0, 36, 5, 5}, ""},
          {"gqa_7_to_1_bias", synthetic_shape("tiny-qwen2"), {1, 7, 2, 9, 4, 4, 30}, ""},
          {"stored_kv_q8", synthetic_shape("tiny-llama"), {5, 1, 8, 2}, "q8_0+hot=2"}};
}

TEST(ShardedGolden, AnyRankCountGivesTheSingleProcessBits) {
  SCOPED_TRACE(test::seed_trace());
  for (const ShardCase& c : shard_cases()) {
    SCOPED_TRACE(c.label);
    const Model model = make_synthetic_model(c.config, test::test_seed());
    GoldenOptions options;
    options.threads = 1;
    if (*c.kv) options.kv = quant::parse_kv_policy_spec(c.kv, "test");
    const GoldenResult single = compute_golden(model, c.tokens, options);
    for (int ranks : {2, 3, 5}) {
      const auto results = on_ranks<TapSet>(ranks, [&](LocalShards& shards) {
        GoldenOptions mine = options;
        mine.shards = &shards;
        TapSet taps = compute_golden(model, c.tokens, mine).taps;
        EXPECT_GT(shards.exchanges, 0) << "rank " << shards.rank() << " never exchanged: the work was not shared";
        return taps;
      });
      for (int r = 0; r < ranks; ++r)
        EXPECT_TRUE(test::same_tap_bits(results[std::size_t(r)], single.taps)) << "rank " << r << " of " << ranks;
    }
  }
}

// The attention probabilities are a tap, never an input of a later operation: without
// the tap they stay with the rank that computed them (the largest exchange, T^2 per
// head, is saved), and the golden is still the single-process one.
TEST(ShardedGolden, ProbabilitiesTravelOnlyWhenKept) {
  SCOPED_TRACE(test::seed_trace());
  const Model model = make_synthetic_model(synthetic_shape("tiny-qwen2"), test::test_seed());
  const std::vector<int> tokens = {1, 7, 2, 9, 4, 4, 30, 11};
  auto sent = [&](TapSelection taps) {
    GoldenOptions options;
    options.threads = 1;
    options.taps = taps;
    const TapSet single = compute_golden(model, tokens, options).taps;
    const auto bytes = on_ranks<std::size_t>(2, [&](LocalShards& shards) {
      GoldenOptions mine = options;
      mine.shards = &shards;
      EXPECT_TRUE(test::same_tap_bits(compute_golden(model, tokens, mine).taps, single)) << "rank " << shards.rank();
      return shards.bytes_sent;
    });
    return bytes[0] + bytes[1];
  };
  const std::size_t with_probs = sent(TapSelection::all), without = sent(TapSelection::logits);
  // Without probs the enclosure's one run saves n_heads * T * T balls per layer (a value
  // at 128 bits and its radius at kRadiusBits); the other taps' exchange is the same.
  const ModelConfig c = model.config;
  const std::size_t probs_numbers = std::size_t(c.n_layers) * c.n_heads * tokens.size() * tokens.size();
  EXPECT_EQ(with_probs - without, probs_numbers * (record_bytes(128) + record_bytes(kRadiusBits)));
}

// The emulated (IEEE binary32) arithmetic takes the other projection path.
TEST(ShardedGolden, EmulatedArithmeticToo) {
  SCOPED_TRACE(test::seed_trace());
  const Model model = make_synthetic_model(odd_config(), test::test_seed());
  const std::vector<int> tokens = {2, 9, 0, 33};
  MpForwardOptions options;
  options.arith = MpArith::ieee(FloatFormat::f32);
  auto run = [&](Shards* shards) {
    MpForwardOptions mine = options;
    mine.shards = shards;
    std::vector<double> flat;
    for (const MpTap& tap : mp_forward(model, to_mp_weights(model, weight_precision_for(24)), tokens, mine))
      for (double v : to_doubles(tap.values)) flat.push_back(v);
    return flat;
  };
  const std::vector<double> single = run(nullptr);
  const auto results = on_ranks<std::vector<double>>(3, [&](LocalShards& shards) { return run(&shards); });
  for (int r = 0; r < 3; ++r) {
    ASSERT_EQ(results[std::size_t(r)].size(), single.size());
    EXPECT_EQ(std::memcmp(results[std::size_t(r)].data(), single.data(), single.size() * sizeof(double)), 0)
        << "rank " << r;
  }
}

}  // namespace
}  // namespace kvfid::ref
