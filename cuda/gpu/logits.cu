// Ops over rows of logits: greedy argmax and (temperature-scaled) log-softmax (logprobs).
//
// Both are memory bound: a logits row (32k..150k entries) is streamed once by argmax, and twice
// (plus an f32 write) by log-softmax, whose max and sum of exponentials are fused into one
// "online" pass (the running sum is rescaled when the running max grows). A row goes to one
// block of up to 1024 threads that stride over it in Packs of 8 elements (16-byte loads of
// 16-bit logits), then combine their partial results with warp shuffles and one round through
// shared memory; a grid-stride loop over rows keeps one wave of blocks resident for batches.
#include <cmath>

#include "checks.h"
#include "vec.cuh"

namespace vt::gpu {
namespace {

constexpr int kMaxThreads = 1024;
constexpr int kVec = 8;

// ---- argmax ----------------------------------------------------------------------------------

template <class A>
__global__ void argmax_kernel(const A* logits, int32_t* out, int32_t num_rows, int32_t vocab_size, bool vector) {
  __shared__ ArgmaxScratch scratch;
  for (int32_t row = blockIdx.x; row < num_rows; row += gridDim.x) {
    const A* x = logits + size_t(row) * vocab_size;
    float best = -INFINITY;
    int32_t best_index = INT32_MAX;
    if (vector) {
      for (int32_t j = threadIdx.x; j < vocab_size / kVec; j += blockDim.x) {
        float v[kVec];
        load_floats<kVec>(x + j * kVec, v);
#pragma unroll
        for (int e = 0; e < kVec; e++) keep_best(v[e], j * kVec + e, best, best_index);
      }
    } else {
      for (int32_t i = threadIdx.x; i < vocab_size; i += blockDim.x) keep_best(to_float(x[i]), i, best, best_index);
    }
    block_argmax(best, best_index, scratch);  // its closing barrier lets the next row reuse scratch
    // An all-NaN row has no winner: index 0, as the CPU backend answers.
    if (threadIdx.x == 0) out[row] = best_index == INT32_MAX ? 0 : best_index;
  }
}

// ---- log-softmax -----------------------------------------------------------------------------

// A running (max, sum of exp(x - max)) pair; -inf and NaN entries add nothing.
__device__ __forceinline__ void online_add(float& max, float& sum, float x) {
  if (x > max) {
    sum = sum * expf(max - x) + 1.0f;  // expf(-inf) = 0 while nothing was seen
    max = x;
  } else if (x > -INFINITY) {
    sum += expf(x - max);
  }
}

__device__ __forceinline__ void online_merge(float& max, float& sum, float other_max, float other_sum) {
  if (other_max > max) {
    sum = sum * expf(max - other_max) + other_sum;
    max = other_max;
  } else if (other_sum > 0.0f) {
    sum += other_sum * expf(other_max - max);
  }
}

__device__ __forceinline__ void warp_online_merge(float& max, float& sum) {
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    const float other_max = __shfl_xor_sync(0xffffffffu, max, offset);
    const float other_sum = __shfl_xor_sync(0xffffffffu, sum, offset);
    online_merge(max, sum, other_max, other_sum);
  }
}

template <class A>
__global__ void log_softmax_kernel(const A* logits, const float* temperatures, float* out, int32_t num_rows,
                                   int32_t vocab_size, bool vector) {
  __shared__ float warp_max_[kWarpSize];
  __shared__ float warp_sum_[kWarpSize];
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int num_warps = blockDim.x / kWarpSize;
  for (int32_t row = blockIdx.x; row < num_rows; row += gridDim.x) {
    const A* x = logits + size_t(row) * vocab_size;
    float* y = out + size_t(row) * vocab_size;
    float temperature = temperatures ? temperatures[row] : 1.0f;
    if (!(temperature > 0.0f)) temperature = 1.0f;
    // Pass 1: max and sum of exponentials of logits / temperature.
    float max = -INFINITY, sum = 0.0f;
    if (vector) {
      for (int32_t j = threadIdx.x; j < vocab_size / kVec; j += blockDim.x) {
        float v[kVec];
        load_floats<kVec>(x + j * kVec, v);
#pragma unroll
        for (int e = 0; e < kVec; e++) online_add(max, sum, v[e] / temperature);
      }
    } else {
      for (int32_t i = threadIdx.x; i < vocab_size; i += blockDim.x) online_add(max, sum, to_float(x[i]) / temperature);
    }
    warp_online_merge(max, sum);
    if (lane == 0) {
      warp_max_[warp] = max;
      warp_sum_[warp] = sum;
    }
    __syncthreads();
    max = lane < num_warps ? warp_max_[lane] : -INFINITY;
    sum = lane < num_warps ? warp_sum_[lane] : 0.0f;
    warp_online_merge(max, sum);
    __syncthreads();  // every thread has read the partials before the next row overwrites them
    const float log_sum = logf(sum);
    // Pass 2 (the row is in L2 now): out = x / temperature - max - log(sum). When out aliases
    // the logits (f32), each thread rereads exactly the elements it overwrites.
    if (vector) {
      for (int32_t j = threadIdx.x; j < vocab_size / kVec; j += blockDim.x) {
        float v[kVec];
        load_floats<kVec>(x + j * kVec, v);
#pragma unroll
        for (int e = 0; e < kVec; e++) v[e] = (v[e] / temperature - max) - log_sum;
        store_floats<kVec>(y + j * kVec, v);
      }
    } else {
      for (int32_t i = threadIdx.x; i < vocab_size; i += blockDim.x)
        y[i] = (to_float(x[i]) / temperature - max) - log_sum;
    }
  }
}

// Rows must hold whole aligned Packs for the vector path: 16 bytes of 8 16-bit logits, or two
// 16-byte halves of 8 f32 values.
bool vector_rows(const void* logits, const float* out, int32_t vocab_size) {
  return vocab_size % kVec == 0 && is_aligned(logits, 16) && (out == nullptr || is_aligned(out, 16));
}

}  // namespace
}  // namespace vt::gpu

using namespace vt::gpu;

extern "C" {

vt_status vt_argmax(vt_context* ctx, const void* logits, int32_t* out, int32_t num_rows, int32_t vocab_size,
                    vt_dtype act_dtype) {
  const char* op = "vt_argmax";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_storage_dtype(op, "act_dtype", act_dtype));
  VT_TRY(vt::check_logits_args(op, logits, out, num_rows, vocab_size));
  if (num_rows == 0) return vt::ok();
  const bool vector = vector_rows(logits, nullptr, vocab_size);
  const int threads = row_threads(vector ? size_t(vocab_size / kVec) : size_t(vocab_size), kMaxThreads);
  const unsigned blocks = grid_blocks(ctx, size_t(num_rows), threads);
  with_dtype(act_dtype, [&](auto a) {
    using A = typename decltype(a)::type;
    auto kernel = &argmax_kernel<A>;
    VT_LAUNCH(kernel, blocks, threads, 0, ctx->stream, static_cast<const A*>(logits), out, num_rows, vocab_size,
              vector);
  });
  return launch_status(op);
}

vt_status vt_log_softmax(vt_context* ctx, const void* logits, const float* temperatures, float* out, int32_t num_rows,
                         int32_t vocab_size, vt_dtype act_dtype) {
  const char* op = "vt_log_softmax";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_storage_dtype(op, "act_dtype", act_dtype));
  VT_TRY(vt::check_logits_args(op, logits, out, num_rows, vocab_size));
  if (num_rows == 0) return vt::ok();
  const bool vector = vector_rows(logits, out, vocab_size);
  const int threads = row_threads(vector ? size_t(vocab_size / kVec) : size_t(vocab_size), kMaxThreads);
  const unsigned blocks = grid_blocks(ctx, size_t(num_rows), threads);
  with_dtype(act_dtype, [&](auto a) {
    using A = typename decltype(a)::type;
    auto kernel = &log_softmax_kernel<A>;
    VT_LAUNCH(kernel, blocks, threads, 0, ctx->stream, static_cast<const A*>(logits), temperatures, out, num_rows,
              vocab_size, vector);
  });
  return launch_status(op);
}

}  // extern "C"
