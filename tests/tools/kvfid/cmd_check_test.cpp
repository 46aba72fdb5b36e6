#include <gtest/gtest.h>

#include "tests/common/run_cli.h"
#include "tests/tools/kvfid/fidelity_scratch.h"

namespace kvfid {
namespace {

TEST(CmdCheck, TheTwinPassesTheGateAtEachKvFormat) {
  const auto& s = test::fidelity_scratch();
  for (const char* kv : {"f32", "f16", "bf16"}) {
    const auto r = test::run_kvfid({"check", "--model", s.model, "--golden", s.golden, "--engine", "twin", "--kv", kv});
    EXPECT_EQ(r.exit_code, 0) << "--kv " << kv << "\n" << r.out << r.err;
  }
}

TEST(CmdCheck, ChunkedPrefillPassesToo) {
  const auto& s = test::fidelity_scratch();
  const auto r = test::run_kvfid({"check", "--model", s.model, "--golden", s.golden, "--engine", "twin", "--chunk", "2"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST(CmdCheck, BadFlagsExitTwo) {
  const auto& s = test::fidelity_scratch();
  EXPECT_EQ(test::run_kvfid({"check", "--model", s.model, "--golden", s.golden, "--engine", "tpu"}).exit_code, 2);
  EXPECT_EQ(test::run_kvfid({"check", "--model", s.model, "--golden", s.golden, "--engine", "twin", "--chunk", "-1"})
                .exit_code,
            2);
  EXPECT_EQ(test::run_kvfid({"check", "--model", s.model, "--golden", s.golden}).exit_code, 2);  // --engine required
}

}  // namespace
}  // namespace kvfid
