// The values of vt_fill_uniform (random-weight models), exactly the formula of vllm_ts.h: one
// definition for the CPU loop and the CUDA kernel, so every backend and the TypeScript reference
// agree bit for bit.
#pragma once

#include <cstdint>

// Callable from host code and from kernels when nvcc compiles it (the CPU build and the CUDA
// emulation are plain C++).
#if defined(__CUDACC__)
#define VT_HOST_DEVICE_INLINE __host__ __device__ __forceinline__
#else
#define VT_HOST_DEVICE_INLINE inline
#endif

namespace vt {

// murmur3's 32-bit finalizer.
VT_HOST_DEVICE_INLINE uint32_t fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  h *= 0xC2B2AE35u;
  h ^= h >> 16;
  return h;
}

// Element i's value: h >> 8 and the scaling by 2^-24 and 2 are exact in f32, and u * 2 - 1 is
// exact too (so contracting it into an FMA changes nothing), which leaves the product with scale
// as the only rounding.
VT_HOST_DEVICE_INLINE float uniform_value(uint64_t i, uint32_t seed, float scale) {
  uint32_t lo = uint32_t(i), hi = uint32_t(i >> 32);
  uint32_t h = fmix32(fmix32(lo ^ seed) + hi * 0x9E3779B9u + 0x85EBCA6Bu);
  float u = float(h >> 8) * (1.0f / 16777216.0f);
  return (u * 2.0f - 1.0f) * scale;
}

}  // namespace vt
