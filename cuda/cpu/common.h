// Shared pieces of the CPU backend: the context, error reporting, and element loads/stores
// for the three storage dtypes (everything is computed in f32).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "vllm_ts.h"

struct vt_context {
  int32_t num_threads;  // OpenMP threads used by every op of this context
};

namespace vt {

// Records the message for vt_last_error() and returns `status`, so call sites read
// `return fail(VT_ERR_INVALID_ARGUMENT, "...")`.
vt_status fail(vt_status status, const std::string& message);
vt_status ok();

inline bool valid_dtype(vt_dtype d) { return d == VT_F32 || d == VT_F16 || d == VT_BF16; }
inline size_t dtype_bytes(vt_dtype d) { return d == VT_F32 ? 4 : 2; }

inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even; NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t(bits >> 16);
}

inline float f16_to_f32(uint16_t h) {
  _Float16 f;
  std::memcpy(&f, &h, 2);
  return float(f);
}

inline uint16_t f32_to_f16(float f) {
  _Float16 h = _Float16(f);
  uint16_t bits;
  std::memcpy(&bits, &h, 2);
  return bits;
}

// Element i of a tensor of dtype d, as f32.
inline float load(const void* p, vt_dtype d, size_t i) {
  switch (d) {
    case VT_F32: return static_cast<const float*>(p)[i];
    case VT_F16: return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
    default: return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
  }
}

inline void store(void* p, vt_dtype d, size_t i, float v) {
  switch (d) {
    case VT_F32: static_cast<float*>(p)[i] = v; break;
    case VT_F16: static_cast<uint16_t*>(p)[i] = f32_to_f16(v); break;
    default: static_cast<uint16_t*>(p)[i] = f32_to_bf16(v); break;
  }
}

}  // namespace vt

// Argument checks shared by every op: they return early with a message naming the op.
#define VT_REQUIRE(cond, op, what)                                              \
  do {                                                                          \
    if (!(cond)) return vt::fail(VT_ERR_INVALID_ARGUMENT, std::string(op) + ": " + (what)); \
  } while (0)
