// Shared pieces of the CPU backend: the context and element loads/stores
// for the three storage dtypes (everything is computed in f32).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "float16.h"
#include "status.h"
#include "vllm_ts.h"

namespace vt::cpu {
class Stream;
}

struct vt_context {
  int32_t num_threads;                // OpenMP threads used by every op of this context
  bool batch_invariant = false;       // vt_context_set_batch_invariant
  vt_graph* capture = nullptr;        // the graph being captured (graph.h), or null
  int32_t caller_cpu = -1;            // the CPU no worker is pinned to (cpu_topology.h); -1: none
  vt::cpu::Stream* stream = nullptr;  // vt_context_set_async's thread (stream.h), or null
};

namespace vt {

// Element i of a tensor of dtype d, as f32.
inline float load(const void* p, vt_dtype d, size_t i) {
  switch (d) {
    case VT_F32:
      return static_cast<const float*>(p)[i];
    case VT_F16:
      return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
    default:
      return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
  }
}

inline void store(void* p, vt_dtype d, size_t i, float v) {
  switch (d) {
    case VT_F32:
      static_cast<float*>(p)[i] = v;
      break;
    case VT_F16:
      static_cast<uint16_t*>(p)[i] = f32_to_f16(v);
      break;
    default:
      static_cast<uint16_t*>(p)[i] = f32_to_bf16(v);
      break;
  }
}

}  // namespace vt
