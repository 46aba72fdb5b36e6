#pragma once
// What a user picks when running the engine under test.
#include <stdexcept>
#include <string>

#include "reference/formats/float_format.h"
#include "reference/golden/taps.h"

namespace kvfid {

enum class Backend { twin, cuda };

struct EngineOptions {
  Backend backend = Backend::twin;
  FloatFormat weights = FloatFormat::f32;  // storage; arithmetic accumulates in FP32
  FloatFormat kv = FloatFormat::f32;       // KV-cache storage
  int chunk = 0;                           // prefill chunk size; 0 = the whole prompt at once
  TapSelection taps = TapSelection::all;
};

// "twin" or "cuda"; throws InputError(source, ...) otherwise.
Backend backend_from_string(const std::string& name, const std::string& source);

// Thrown when the CUDA backend is asked for but no GPU (or no CUDA build) is there;
// GPU tests skip with its message.
class BackendUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace kvfid
