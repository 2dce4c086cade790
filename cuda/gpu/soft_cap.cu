// Soft-capping in place, x = cap * tanh(x / cap): Gemma's final_logit_softcapping on the logits.
//
// Memory bound (one read and one write per element against a tanhf): a grid-stride loop over
// the elements, one per thread per iteration, over one wave of blocks. It runs on a step's
// sampled rows only (a few times the vocabulary), so plain element accesses suffice.
#include <cmath>

#include "checks.h"
#include "vec.cuh"

namespace vt::gpu {
namespace {

constexpr int kThreads = 256;

template <class A>
__global__ void soft_cap_kernel(A* x, size_t count, float cap) {
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += size_t(gridDim.x) * blockDim.x)
    x[i] = from_float<A>(cap * tanhf(to_float(x[i]) / cap));
}

}  // namespace
}  // namespace vt::gpu

using namespace vt::gpu;

extern "C" {

vt_status vt_soft_cap(vt_context* ctx, void* x, size_t count, float cap, vt_dtype act_dtype) {
  const char* op = "vt_soft_cap";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_storage_dtype(op, "act_dtype", act_dtype));
  VT_TRY(vt::check_soft_cap_args(op, x, count, cap));
  if (count == 0) return vt::ok();
  const unsigned blocks = grid_blocks(ctx, ceil_div(count, size_t(kThreads)), kThreads);
  with_dtype(act_dtype, [&](auto a) {
    using A = typename decltype(a)::type;
    auto kernel = &soft_cap_kernel<A>;
    VT_LAUNCH(kernel, blocks, kThreads, 0, ctx->stream, static_cast<A*>(x), count, cap);
  });
  return launch_status(op);
}

}  // extern "C"
