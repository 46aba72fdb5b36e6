#include "tests/tools/kvfid/fidelity_scratch.h"

#include <gtest/gtest.h>

#include "tests/common/run_cli.h"
#include "tests/common/test_env.h"

namespace kvfid::test {

namespace {

void run_step(const std::vector<std::string>& args) {
  const CliResult r = run_kvfid(args);
  std::string line = "kvfid";
  for (const auto& a : args) line += " " + a;
  if (r.exit_code != 0) throw std::runtime_error(line + " exited " + std::to_string(r.exit_code) + ": " + r.err);
}

FidelityScratch make_scratch() {
  FidelityScratch s;
  s.dir = scratch_dir("fidelity");
  s.model = s.dir + "/tiny-llama";
  s.golden = s.dir + "/golden";
  s.candidate = s.dir + "/twin.safetensors";
  s.tokens = {1, 7, 3, 12, 5, 9};
  const std::string tokens = "1,7,3,12,5,9";
  run_step({"fixture", "--shape", "tiny-llama", "--seed", "1", "--out", s.model});
  run_step({"golden", "--model", s.model, "--tokens", tokens, "--out", s.golden});
  run_step({"run", "--model", s.model, "--engine", "twin", "--tokens", tokens, "--out", s.candidate});
  return s;
}

}  // namespace

const FidelityScratch& fidelity_scratch() {
  static const FidelityScratch scratch = make_scratch();
  return scratch;
}

}  // namespace kvfid::test
