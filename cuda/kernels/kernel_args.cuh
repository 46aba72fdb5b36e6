#pragma once
// What the engine's host code hands its kernels about a step's rows: plain structs,
// so that a .cu file holding host state (device_state.cuh) needs no kernel of another
// file compiled into it.
#include <cstdint>

namespace kvfid::engine::kernels {

// Where a step row's token lives: its sequence's cache and position (kernels.cuh).
struct RowInfo {
  void* cache;  // the sequence's KvLayout buffer (tiered path: the FP32 cold planes)
  int capacity;
  int pos;
  // Tiered path only (cuda/engine/kv_plan.h), else null:
  float* hot;                  // KvLayout FP32 hot planes, null without a hot plane
  float* raw;                  // KIVI: [n_layers] KvLayout K planes of the FP32 keys
  std::uint8_t* const* codes;  // [n_layers, 2 (K, V)] pointers to the slots' code regions
};

// Where step row r's latent state lives (latent_kernels.cuh): its cache row for this
// layer, and its reconstructed keys and values (FP32, [n_heads, capacity, head_dim |
// v_head_dim] of the layer).
struct LatentRow {
  void* row;    // the cache row of the row's position: lw elements of the cache format
  float* rk;    // key head 0, position 0 of the layer
  float* rv;
  int capacity;
  int pos;
};

struct LatentShape {
  int n_heads, head_dim, nope, rope_dim, v_head_dim, kv_lora_rank;
  __host__ __device__ int q_dim() const { return n_heads * head_dim; }
};

}  // namespace kvfid::engine::kernels
