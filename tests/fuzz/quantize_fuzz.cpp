// `kvfid quantize` input through the codecs it calls: the first byte picks the format
// (low 7 bits, modulo the registry) and the direction (high bit: decode), the next four
// are the --scale float32, the rest the --in file. The CLI's preconditions (a normal
// positive finite scale, whole blocks, finite values, codes that decode to finite
// values) are applied as it applies them;
// then every codec promise the CLI relies on is checked:
//   encode:  |decode_exact(code) - x| <= error_bound(x) (the codec's round-trip bound);
//   decode:  decode (FP32) is decode_exact rounded to float32, bit for bit.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "reference/formats/quant/registry.h"

namespace {

bool same_float(float a, float b) { return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, 4) == 0; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 5) return 0;
  const std::vector<kvfid::ref::quant::FormatInfo>& formats = kvfid::ref::quant::all_formats();
  const kvfid::ref::quant::FormatInfo& f = formats[(data[0] & 0x7f) % formats.size()];
  const bool decoding = data[0] & 0x80;
  float scale;
  std::memcpy(&scale, data + 1, 4);
  if (!(std::isfinite(scale) && scale >= 0x1p-126f)) return 0;  // the CLI refuses it
  const kvfid::ref::quant::CodecParams p{scale};
  const std::uint8_t* payload = data + 5;
  const std::size_t n = size - 5;

  if (decoding) {
    for (std::size_t b = 0; b + std::size_t(f.bytes) <= n; b += std::size_t(f.bytes))
      for (int i = 0; i < f.block; ++i)
        if (!same_float(float(f.decode_exact(payload + b, i, p)), f.decode(payload + b, i, p))) __builtin_trap();
    return 0;
  }
  if (n == 0 || n % 4 != 0 || n / 4 % std::size_t(f.block) != 0) return 0;  // nothing to do, or the CLI refuses it
  std::vector<float> x(n / 4);  // [values]
  std::memcpy(x.data(), payload, n);
  for (float v : x)
    if (!std::isfinite(v)) return 0;  // the CLI refuses it
  std::vector<std::uint8_t> block(std::size_t(f.bytes));  // one block's code
  for (std::size_t b = 0; b < x.size(); b += std::size_t(f.block)) {
    f.encode(x.data() + b, block.data(), p);
    for (int i = 0; i < f.block; ++i)
      if (!std::isfinite(f.decode_exact(block.data(), i, p))) return 0;  // beyond the range: the CLI refuses it
    for (int i = 0; i < f.block; ++i) {
      const double error = std::fabs(f.decode_exact(block.data(), i, p) - double(x[b + std::size_t(i)]));
      if (!(error <= f.error_bound(x.data() + b, i, p))) __builtin_trap();
    }
  }
  return 0;
}
