#include "cuda/engine/engine.h"

#include "reference/util/input_error.h"

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below

namespace {

// The backend for `options`.
std::unique_ptr<EngineBackend> make_backend(const Model& model, const EngineOptions& options) {
  if (options.backend != Backend::cuda) return make_twin_backend(model, options);
  return make_cuda_backend(model, options);
}

}  // namespace

Engine::Engine(const Model& model, const EngineOptions& options)
    : config_(model.config),
      model_basis_(quant::make_rotation(options.kv.rot, model.config.head_dim, options.kv.source)),
      backend_(make_backend(model, options)),
      evicting_(bool(options.kv.evict)) {}

int Engine::add_sequence(int capacity) {
  const int id = backend_->add_sequence(capacity);
  lengths_.push_back(0);
  return id;
}

int Engine::fork_sequence(int source, int prefix_length, int capacity) {
  if (source < 0 || source >= int(lengths_.size()))
    throw InputError("engine", "unknown sequence id " + std::to_string(source));
  if (prefix_length < 0 || prefix_length > lengths_[source] || prefix_length > capacity)
    throw InputError("engine", "prefix length " + std::to_string(prefix_length) + " outside [0, min(source length " +
                                   std::to_string(lengths_[source]) + ", capacity " + std::to_string(capacity) + ")]");
  if (evicting_)  // the kept keys of a prefix are gone once later queries evicted them
    throw InputError("engine", "a fork of a sequence under an eviction policy (its cache no longer holds the prefix "
                               "as it was)");
  const int id = backend_->fork_sequence(source, prefix_length, capacity);
  lengths_.push_back(prefix_length);
  return id;
}

const StepOutput& Engine::step(const std::vector<SequenceInput>& inputs, bool want_taps) {
  rows_.clear();
  std::vector<int> next = lengths_;
  for (const SequenceInput& in : inputs) {
    if (in.seq < 0 || in.seq >= int(lengths_.size()))
      throw InputError("engine", "unknown sequence id " + std::to_string(in.seq));
    for (int t : in.tokens) {
      if (t < 0 || t >= config_.vocab)
        throw InputError("engine", "token id " + std::to_string(t) + " outside [0, " + std::to_string(config_.vocab) + ")");
      rows_.push_back({in.seq, t, next[in.seq]++});
    }
  }
  logprobs_current_ = false;
  backend_->step(rows_, want_taps, out_);
  lengths_ = std::move(next);
  if (model_basis_.active())
    for (LayerTaps& t : out_.layers) {
      t.q_rotated = t.q;
      model_basis_.apply(t.q.data(), t.q.size() / config_.head_dim);
      model_basis_.apply(t.k.data(), t.k.size() / config_.head_dim);
      model_basis_.apply(t.v.data(), t.v.size() / config_.head_dim);
    }
  return out_;
}

std::vector<quant::EvictionEvent> Engine::evictions(int seq) const {
  if (seq < 0 || seq >= int(lengths_.size())) throw InputError("engine", "unknown sequence id " + std::to_string(seq));
  return backend_->evictions(seq);
}

const std::vector<float>& Engine::logprobs() {
  if (!logprobs_current_) {
    backend_->log_softmax(out_, logprobs_);
    logprobs_current_ = true;
  }
  return logprobs_;
}

CacheValues Engine::cache_values(int seq, int layer, Basis basis) {
  if (seq < 0 || seq >= int(lengths_.size())) throw InputError("engine", "unknown sequence id " + std::to_string(seq));
  if (layer < 0 || layer >= config_.n_layers)
    throw InputError("engine", "layer " + std::to_string(layer) + " outside [0, " + std::to_string(config_.n_layers) + ")");
  CacheValues values = backend_->cache_values(seq, layer, lengths_[seq]);
  if (basis == Basis::rotated) return values;
  for (std::vector<float>* plane : {&values.k, &values.v, &values.k_hot, &values.v_hot})
    model_basis_.apply(plane->data(), plane->size() / config_.head_dim);
  return values;
}

}  // namespace kvfid::engine
