#include "tools/kvfid/threads_option.h"

#include <string>

#include "reference/util/input_error.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the specification's names: the layer below

OptionSpec threads_option() {
  return {"threads", "N",
          "host threads of the CPU twin; its results are the same bits for any N (default: one per hardware thread)"};
}

int threads_from_args(const ParsedArgs& args) {
  if (!args.has("threads")) return 0;
  const long long n = args.integer_or("threads", 0);
  if (n < 1 || n > kMaxThreads)
    throw InputError("--threads", std::to_string(n) + " is outside [1, " + std::to_string(kMaxThreads) + "]");
  return int(n);
}

}  // namespace kvfid::cli
