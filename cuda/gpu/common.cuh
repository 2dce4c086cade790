// What every file of the CUDA backend shares: the context, CUDA error reporting, the storage
// types of the three dtypes with their f32 conversions, a runtime-dtype dispatch, and warp and
// block reductions.
#pragma once

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <string>

#include "runtime.cuh"
#include "status.h"
#include "vllm_ts.h"

namespace vt::gpu {
struct Blas;  // cuBLAS, when found at run time (blas.cu)
}

struct vt_context {
  int device;
  cudaStream_t stream;
  int num_sms;
  size_t max_shared_bytes;  // opt-in shared memory per block
  vt::gpu::Blas* blas;      // null when cuBLAS is not available: our own matmul kernels run
  // Device scratch owned by the context (split-K partials of paged attention), allocated with it
  // so that no op allocates, which a graph capture forbids.
  void* scratch;
  size_t scratch_bytes;
};

namespace vt::gpu {

constexpr int kWarpSize = 32;

// Records "op: <CUDA's message>" for vt_last_error and returns VT_ERR_DEVICE (or
// VT_ERR_OUT_OF_MEMORY for an allocation failure).
vt_status cuda_fail(cudaError_t error, const char* op);

// The launch's own error (bad configuration) as a status; kernels' faults show at the next sync.
inline vt_status launch_status(const char* op) {
  cudaError_t error = cudaGetLastError();
  return error == cudaSuccess ? ok() : cuda_fail(error, op);
}

// cuBLAS for a context (null when the library is absent or VT_DISABLE_CUBLAS is set), and
// its release; both in blas.cu.
Blas* blas_open(cudaStream_t stream);
void blas_close(Blas* blas);

// ---- storage dtypes --------------------------------------------------------------------------

template <vt_dtype D>
struct Storage;
template <>
struct Storage<VT_F32> {
  using type = float;
};
template <>
struct Storage<VT_F16> {
  using type = __half;
};
template <>
struct Storage<VT_BF16> {
  using type = __nv_bfloat16;
};

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

template <class T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __half from_float<__half>(float x) {
  return __float2half_rn(x);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

// A value of this type carries the storage type T of a runtime dtype into a generic lambda:
//   with_dtype(d, [&](auto tag) { using T = typename decltype(tag)::type; ... });
template <class T>
struct TypeTag {
  using type = T;
};

template <class F>
void with_dtype(vt_dtype d, F&& f) {
  switch (d) {
    case VT_F32:
      f(TypeTag<float>{});
      break;
    case VT_F16:
      f(TypeTag<__half>{});
      break;
    default:
      f(TypeTag<__nv_bfloat16>{});
      break;
  }
}

// ---- reductions ------------------------------------------------------------------------------
// Every thread of the warp (or block) must call these; all get the result.

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// `scratch`: __shared__ float[32] of the caller; blockDim.x a multiple of 32. Ends with a barrier
// so scratch may be reused at once.
template <bool IsMax>
__device__ __forceinline__ float block_reduce(float v, float* scratch) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int num_warps = blockDim.x / kWarpSize;
  v = IsMax ? warp_max(v) : warp_sum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float r = lane < num_warps ? scratch[lane] : (IsMax ? -FLT_MAX : 0.f);
  r = IsMax ? warp_max(r) : warp_sum(r);
  __syncthreads();
  return r;
}

__device__ __forceinline__ float block_sum(float v, float* scratch) { return block_reduce<false>(v, scratch); }
__device__ __forceinline__ float block_max(float v, float* scratch) { return block_reduce<true>(v, scratch); }

// ---- argmax ----------------------------------------------------------------------------------
// A running (best, best_index) starts at (-INFINITY, INT32_MAX): the lowest index of the largest
// value wins, a NaN compares false both ways so it never wins, and the start loses to any -inf
// that is actually in the row (a best_index still INT32_MAX means only NaNs were seen).

// Folds (value, index) into the running best. A thread that visits its indices in increasing
// order keeps its lowest among ties either way; the index comparison settles ties between lanes.
__device__ __forceinline__ void keep_best(float value, int32_t index, float& best, int32_t& best_index) {
  if (value > best || (value == best && index < best_index)) {
    best = value;
    best_index = index;
  }
}

__device__ __forceinline__ void warp_argmax(float& best, int32_t& best_index) {
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    const float value = __shfl_xor_sync(0xffffffffu, best, offset);
    const int32_t index = __shfl_xor_sync(0xffffffffu, best_index, offset);
    keep_best(value, index, best, best_index);
  }
}

// Shared memory of block_argmax: a partial result per warp.
struct ArgmaxScratch {
  float value[kWarpSize];
  int32_t index[kWarpSize];
};

// The block's (best, best_index) in every thread; blockDim.x a multiple of 32. Ends with a
// barrier so scratch may be reused at once.
__device__ __forceinline__ void block_argmax(float& best, int32_t& best_index, ArgmaxScratch& scratch) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int num_warps = blockDim.x / kWarpSize;
  warp_argmax(best, best_index);
  if (lane == 0) {
    scratch.value[warp] = best;
    scratch.index[warp] = best_index;
  }
  __syncthreads();
  best = lane < num_warps ? scratch.value[lane] : -INFINITY;
  best_index = lane < num_warps ? scratch.index[lane] : INT32_MAX;
  warp_argmax(best, best_index);
  __syncthreads();
}

inline unsigned ceil_div(size_t a, size_t b) { return unsigned((a + b - 1) / b); }

}  // namespace vt::gpu

// Returns from the calling op with VT_ERR_DEVICE when a CUDA runtime call fails.
#define VT_CUDA_TRY(expr, op)                                                   \
  do {                                                                          \
    cudaError_t cuda_error_ = (expr);                                           \
    if (cuda_error_ != cudaSuccess) return vt::gpu::cuda_fail(cuda_error_, op); \
  } while (0)
