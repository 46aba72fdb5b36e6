// kvfid quantize: raw little-endian float32 <-> a quantized format's raw blocks, so
// users can compare kvfid's bytes with another implementation's.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "reference/formats/quant/registry.h"
#include "reference/io/atomic_file.h"
#include "reference/io/json_input.h"
#include "reference/util/input_error.h"
#include "tools/kvfid/command.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the specification's names: the layer below

namespace {

std::uint32_t load_le32(const char* p) {
  std::uint32_t u = 0;
  for (int b = 0; b < 4; ++b) u |= std::uint32_t(static_cast<unsigned char>(p[b])) << (8 * b);
  return u;
}

void append_le32(std::string& out, std::uint32_t u) {
  for (int b = 0; b < 4; ++b) out.push_back(char((u >> (8 * b)) & 0xFFu));
}

float float_of(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

std::uint32_t bits_of(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// The static scale of the scaled formats: a positive, finite, normal float32.
quant::CodecParams params_from(const ParsedArgs& args) {
  const double s = args.number_or("scale", 1.0);
  const float f = float(s);
  if (!(std::isfinite(f) && f >= 0x1p-126f))
    throw InputError("--scale", "'" + args.str("scale") + "' is not a positive, finite, normal float32 scale");
  return quant::CodecParams{f};
}

// [n] floats -> [n / block] blocks of the format's layout.
std::string quantize(const std::string& in, const std::string& raw, const quant::FormatInfo& f, const quant::CodecParams& p) {
  if (raw.size() % 4 != 0)
    throw InputError(in, std::to_string(raw.size()) + " bytes is not a whole number of float32 values");
  const std::size_t n = raw.size() / 4;
  if (n % f.block != 0)
    throw InputError(in, "holds " + std::to_string(n) + " values, not a multiple of " + f.name + "'s block of " +
                             std::to_string(f.block));
  std::vector<float> x(n);  // [n]
  for (std::size_t i = 0; i < n; ++i) {
    x[i] = float_of(load_le32(raw.data() + 4 * i));
    if (!std::isfinite(x[i]))
      throw InputError(in, "value " + std::to_string(i) + " is " + (std::isnan(x[i]) ? "NaN" : "infinite") +
                               "; quantized formats take finite values only");
  }
  std::string out(n / f.block * f.bytes, '\0');  // [n / block][bytes]
  for (std::size_t b = 0; b < n / f.block; ++b) {
    auto* block = reinterpret_cast<std::uint8_t*>(out.data()) + b * f.bytes;
    f.encode(x.data() + b * f.block, block, p);
    // A finite value beyond the format's range (f16 above 65504, or a block whose FP16
    // scale or minimum overflows: q8_0 past 127 * 65504) encodes to a code that decodes
    // to infinity or NaN, which no user asked for.
    for (int i = 0; i < f.block; ++i)
      if (!std::isfinite(f.decode_exact(block, i, p)))
        throw InputError(in, "values " + std::to_string(b * f.block) + " to " + std::to_string((b + 1) * f.block - 1) +
                                 " exceed what " + f.name + " can hold: value " + std::to_string(b * f.block + i) +
                                 " would decode to " + (std::isnan(f.decode_exact(block, i, p)) ? "NaN" : "infinity"));
  }
  return out;
}

// [blocks][bytes] -> [blocks * block] float32: each value is decode_exact rounded to
// FP32, which the derived tests check is bit for bit the engine's FP32 decode.
std::string dequantize(const std::string& in, const std::string& raw, const quant::FormatInfo& f,
                       const quant::CodecParams& p) {
  if (raw.size() % f.bytes != 0)
    throw InputError(in, std::to_string(raw.size()) + " bytes is not a whole number of " + f.name + " blocks (" +
                             std::to_string(f.bytes) + " bytes each)");
  std::string out;
  out.reserve(raw.size() / f.bytes * f.block * 4);
  for (std::size_t b = 0; b < raw.size() / f.bytes; ++b) {
    const auto* block = reinterpret_cast<const std::uint8_t*>(raw.data()) + b * f.bytes;
    for (int i = 0; i < f.block; ++i) append_le32(out, bits_of(float(f.decode_exact(block, i, p))));
  }
  return out;
}

int run_quantize(const ParsedArgs& args) {
  const quant::FormatInfo& f = quant::format_by_name(args.str("format"), "--format");
  const quant::CodecParams p = params_from(args);
  const std::string in = args.str("in"), out = args.str("out");
  const bool decoding = args.has("decode");
  const std::string raw = read_text_file(in);
  const std::string result = decoding ? dequantize(in, raw, f, p) : quantize(in, raw, f, p);
  write_file_atomic(out, result);
  const std::size_t values = decoding ? result.size() / 4 : raw.size() / 4;
  std::cout << "wrote " << out << ": " << values << " values " << (decoding ? "decoded from " : "in ")
            << values / f.block << ' ' << f.name << " blocks\n";
  return kExitPass;
}

}  // namespace

extern const CommandSpec kQuantizeCommand = {
    "quantize",
    "quantize raw float32 to a format's blocks, or decode them back",
    "Reads --in as raw little-endian float32 values and writes --out as the format's raw blocks,\n"
    "back to back in the format's own byte layout (q8_0 and q4_0 are ggml's, byte for byte; the\n"
    "headers in reference/formats/quant/ describe the others). With --decode, reads blocks and\n"
    "writes float32: each value is the exact value of its code rounded once to float32, the same\n"
    "bits the engine's FP32 decode gives. The value count must be a whole number of blocks, and\n"
    "every value finite and within the format's range (a block whose code would decode to\n"
    "infinity or NaN is refused); otherwise nothing is written.",
    {{"format", "NAME", "format name, e.g. q8_0, q4_0, int4_32, fp8_e4m3 (an unknown name lists them all)",
      true},
     {"in", "FILE", "raw float32 values (raw blocks with --decode)", true},
     {"out", "FILE", "file to write (replaced whole, or left untouched on error)", true},
     {"decode", "", "blocks to float32 instead", false},
     {"scale", "S", "static scale of the scaled FP8 formats: value = code * S (default 1)", false}},
    run_quantize,
};

}  // namespace kvfid::cli
