// Mixture of experts on CUDA: routing with a warp per token, grouping in one block (a thread per
// expert and part of the slots counts and then lists its slots, so the order is deterministic
// without atomics), and combining as an elementwise loop; the experts' matmuls are
// moe_matmul.cu. Nothing is read on the host, so a step with these ops can be captured in a
// graph.
#include <cmath>

#include "checks.h"
#include "common.cuh"
#include "vec.cuh"

namespace vt::gpu {
namespace {

constexpr int kRouteWarps = 4;  // tokens per routing block
constexpr int kCombineThreads = 256;

// The top_k are chosen by repeated warp arg-max over the logits (the lowest id among equals),
// which orders them as the probabilities do; each lane marks its taken experts in a bit mask
// (bit i: expert lane + 32 i, so num_experts <= 1024).
template <class A>
__global__ void moe_route_kernel(const A* logits, int32_t num_tokens, int32_t num_experts, int32_t top_k,
                                 bool renormalize, int32_t* expert_ids, float* weights) {
  const int lane = threadIdx.x % kWarpSize;
  const int32_t t = blockIdx.x * kRouteWarps + threadIdx.x / kWarpSize;
  if (t >= num_tokens) return;  // the whole warp
  const A* row = logits + size_t(t) * num_experts;
  float max = -INFINITY;
  for (int32_t e = lane; e < num_experts; e += kWarpSize) max = fmaxf(max, to_float(row[e]));
  max = warp_max(max);
  float sum = 0;
  for (int32_t e = lane; e < num_experts; e += kWarpSize) sum += expf(to_float(row[e]) - max);
  sum = warp_sum(sum);
  uint32_t taken = 0;
  float chosen = 0;
  for (int32_t j = 0; j < top_k; j++) {
    float best = -INFINITY;
    int32_t best_index = INT32_MAX;
    for (int32_t i = 0, e = lane; e < num_experts; i++, e += kWarpSize)
      if (!((taken >> i) & 1u)) keep_best(to_float(row[e]), e, best, best_index);
    warp_argmax(best, best_index);
    if (best_index % kWarpSize == lane) taken |= 1u << (best_index / kWarpSize);
    const float p = expf(best - max) / sum;
    chosen += p;
    if (lane == 0) {
      expert_ids[size_t(t) * top_k + j] = best_index;
      weights[size_t(t) * top_k + j] = p;
    }
  }
  if (renormalize && lane == 0)
    for (int32_t j = 0; j < top_k; j++) weights[size_t(t) * top_k + j] /= chosen;
}

constexpr int kGroupThreads = 1024;
// Parts of the slots at most: each expert's thread of the first part then sums this many counts.
constexpr int kGroupMaxParts = 64;
static_assert(kGroupThreads >= kMoeMaxExperts, "a thread for every expert");

// One block of kGroupThreads: thread t owns expert t % num_experts in part t / num_experts of
// the slots (contiguous parts, as many as the threads allow up to kGroupMaxParts), so a
// prefill's tens of thousands of slots are scanned by up to 64 threads per expert rather than
// one. Each thread counts its expert's slots in its part, then lists them in order from where
// the experts before its own and the parts before its own end: the order is deterministic
// without atomics.
__global__ void __launch_bounds__(kGroupThreads)
    moe_group_kernel(const int32_t* expert_ids, int32_t num_slots, int32_t num_experts, int32_t* sorted_slots,
                     int32_t* expert_offsets) {
  // [part][expert]: a thread's count, then its expert's slots in the parts before its own.
  __shared__ int32_t before[kGroupThreads];
  __shared__ int32_t start[kMoeMaxExperts + 1];
  const int32_t parts = min(kGroupMaxParts, kGroupThreads / num_experts);
  const int32_t e = int32_t(threadIdx.x) % num_experts, part = int32_t(threadIdx.x) / num_experts;
  const int32_t per_part = (num_slots + parts - 1) / parts;
  const int32_t first = min(num_slots, part * per_part), last = min(num_slots, first + per_part);
  const bool owner = part < parts;
  if (owner) {
    int32_t count = 0;
    for (int32_t s = first; s < last; s++) count += expert_ids[s] == e;
    before[threadIdx.x] = count;
  }
  __syncthreads();
  if (int32_t(threadIdx.x) < num_experts) {
    int32_t running = 0;
    for (int32_t p = 0; p < parts; p++) {
      const int32_t count = before[p * num_experts + e];
      before[p * num_experts + e] = running;
      running += count;
    }
    start[e + 1] = running;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    start[0] = 0;
    for (int32_t i = 0; i < num_experts; i++) start[i + 1] += start[i];
  }
  __syncthreads();
  if (owner) {
    int32_t next = start[e] + before[threadIdx.x];
    for (int32_t s = first; s < last; s++)
      if (expert_ids[s] == e) sorted_slots[next++] = s;
  }
  for (int32_t i = int32_t(threadIdx.x); i <= num_experts; i += kGroupThreads) expert_offsets[i] = start[i];
}

template <class A>
__global__ void moe_combine_kernel(const A* x, const float* weights, const A* shared, const A* shared_gate, A* out,
                                   int32_t num_tokens, int32_t top_k, int32_t d) {
  const size_t count = size_t(num_tokens) * d;
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += size_t(gridDim.x) * blockDim.x) {
    const size_t t = i / d, column = i - t * d;
    float sum = 0;
    for (int32_t j = 0; j < top_k; j++)
      sum += weights[t * top_k + j] * to_float(x[(t * top_k + j) * size_t(d) + column]);
    if (shared != nullptr) sum += to_float(shared[i]) / (1.0f + expf(-to_float(shared_gate[t])));
    out[i] = from_float<A>(sum);
  }
}

}  // namespace
}  // namespace vt::gpu

using namespace vt::gpu;

extern "C" {

vt_status vt_moe_route(vt_context* ctx, const void* logits, int32_t num_tokens, int32_t num_experts, int32_t top_k,
                       int32_t renormalize, vt_dtype act_dtype, int32_t* expert_ids, float* weights) {
  const char* op = "vt_moe_route";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_storage_dtype(op, "act_dtype", act_dtype));
  VT_TRY(vt::check_moe_route_args(op, logits, num_tokens, num_experts, top_k, expert_ids, weights));
  if (num_tokens == 0) return vt::ok();
  with_dtype(act_dtype, [&](auto a) {
    using A = typename decltype(a)::type;
    auto kernel = &moe_route_kernel<A>;
    VT_LAUNCH(kernel, ceil_div(num_tokens, kRouteWarps), kRouteWarps * kWarpSize, 0, ctx->stream,
              static_cast<const A*>(logits), num_tokens, num_experts, top_k, renormalize != 0, expert_ids, weights);
  });
  return launch_status(op);
}

vt_status vt_moe_group(vt_context* ctx, const int32_t* expert_ids, int32_t num_slots, int32_t num_experts,
                       int32_t* sorted_slots, int32_t* expert_offsets) {
  const char* op = "vt_moe_group";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_moe_group_args(op, expert_ids, num_slots, num_experts, sorted_slots, expert_offsets));
  VT_LAUNCH(moe_group_kernel, 1, kGroupThreads, 0, ctx->stream, expert_ids, num_slots, num_experts, sorted_slots,
            expert_offsets);
  return launch_status(op);
}

vt_status vt_moe_combine(vt_context* ctx, const void* x, const float* weights, const void* shared,
                         const void* shared_gate, void* out, int32_t num_tokens, int32_t top_k, int32_t d,
                         vt_dtype act_dtype) {
  const char* op = "vt_moe_combine";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_storage_dtype(op, "act_dtype", act_dtype));
  VT_TRY(vt::check_moe_combine_args(op, x, weights, shared, shared_gate, out, num_tokens, top_k, d));
  if (num_tokens == 0 || d == 0) return vt::ok();
  const unsigned blocks = grid_blocks(ctx, ceil_div(size_t(num_tokens) * d, kCombineThreads), kCombineThreads);
  with_dtype(act_dtype, [&](auto a) {
    using A = typename decltype(a)::type;
    auto kernel = &moe_combine_kernel<A>;
    VT_LAUNCH(kernel, blocks, kCombineThreads, 0, ctx->stream, static_cast<const A*>(x), weights,
              static_cast<const A*>(shared), static_cast<const A*>(shared_gate), static_cast<A*>(out), num_tokens,
              top_k, d);
  });
  return launch_status(op);
}

}  // extern "C"
