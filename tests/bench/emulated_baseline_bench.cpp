// The emulated baseline's time on a model given by path (not a test; run by hand, under
// /usr/bin/time -v for the peak RSS): emulated_forward (native) or emulated_forward_mpfr
// (the MPFR specification) over the ids 1..tokens, every tap or logits only; prints wall
// and CPU seconds and the weight multiply-adds per CPU second (parameters x tokens;
// attention's products left out).
//   emulated_baseline_bench MODEL TOKENS [arith=f32] [taps=all] [impl=native|mpfr] [weights=f32] [kv=f32]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "reference/io/load_model.h"
#include "reference/formats/quant/kv_policy.h"
#include "reference/model/weight_storage.h"
#include "reference/native/emulated_forward.h"

namespace {

double cpu_s() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace kvfid::ref;
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: emulated_baseline_bench MODEL TOKENS [arith=f32] [taps=all] [impl=native|mpfr] [weights=f32] "
                 "[kv=f32]\n");
    return 2;
  }
  auto arg = [&](int i, const char* fallback) { return argc > i ? std::string(argv[i]) : std::string(fallback); };
  const Model model = load_model(argv[1]);
  std::vector<int> tokens(std::size_t(std::stoi(argv[2])));
  for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = int((i + 1) % std::size_t(model.config.vocab));
  const Emulation e{float_format_from_string(arg(3, "f32"), "arith"), weight_format_from_string(arg(6, "f32"), "weights"),
                    quant::parse_kv_policy_spec(arg(7, "f32"), "kv"), {}};
  const TapSelection taps = tap_selection_from_string(arg(4, "all"), "taps");
  const bool mpfr = arg(5, "native") == "mpfr";
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = cpu_s();
  const TapSet out = mpfr ? emulated_forward_mpfr(model, tokens, e, taps) : emulated_forward(model, tokens, e, taps);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = cpu_s() - c0;
  std::size_t values = 0;
  for (const TapTensor& t : out) values += t.values.size();
  const double macs = double(model.config.parameter_count()) * double(tokens.size());
  std::printf("%s %s over %zu tokens: %zu tap values, %.2f s wall, %.2f s CPU, %.3g weight MAC per CPU second\n",
              mpfr ? "mpfr" : "native", to_string(e.arithmetic).c_str(), tokens.size(), values, wall, cpu, macs / cpu);
  return 0;
}
