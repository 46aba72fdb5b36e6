#pragma once
// Google Benchmark's console report, plus items/s (MACs/s) per benchmark, so a bench's
// main() can print ratios measured in the same run. With --benchmark_repetitions the
// medians are kept.
#include <map>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

namespace kvfid::test {

class RateReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.run_type == Run::RT_Aggregate && run.aggregate_name != "median") continue;
      auto it = run.counters.find("items_per_second");
      if (it != run.counters.end()) rates[run.run_name.str()] = it->second;
    }
  }
  std::map<std::string, double> rates;
};

}  // namespace kvfid::test
