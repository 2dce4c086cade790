// Grammar-constrained decoding: the token bitmask of structured outputs applied to rows of logits.
//
// Memory bound, and only by writes: the mask is one bit per token, and the logits are never read,
// only the disallowed entries written with -inf. The grid is 2-D like vt_gather_rows': x picks a
// mask row (a grid-stride loop over them), y splits the vocabulary into slices of blocks of 256
// threads. A thread owns one token per step and consecutive threads own consecutive tokens, so a
// warp covers one mask word (a broadcast load) and its stores to the row coalesce.
#include "checks.h"
#include "vec.cuh"

namespace vt::gpu {
namespace {

constexpr int kThreads = 256;
constexpr size_t kTokensPerThread = 8;  // work per thread before another y-slice is worth a block
constexpr unsigned kMaxSlices = 65535;

// Writing only the masked entries (no read-modify-write) is also what makes a row listed twice
// harmless: blocks masking it at once only ever store -inf.
template <class A>
__global__ void apply_token_bitmask_kernel(A* logits, int32_t num_rows, int32_t vocab_size, const uint32_t* bitmask,
                                           int32_t words_per_row, const int32_t* row_indices, int32_t num_masked_rows) {
  const A masked = from_float<A>(-INFINITY);
  for (int32_t i = blockIdx.x; i < num_masked_rows; i += gridDim.x) {
    const int32_t row = row_indices[i];
    if (row < 0 || row >= num_rows) continue;  // not checkable on the host: the mask row is skipped
    const uint32_t* words = bitmask + size_t(i) * words_per_row;
    A* x = logits + size_t(row) * vocab_size;
    for (size_t t = size_t(blockIdx.y) * blockDim.x + threadIdx.x; t < size_t(vocab_size);
         t += size_t(gridDim.y) * blockDim.x)
      if (!((words[t / 32] >> (t % 32)) & 1u)) x[t] = masked;
  }
}

}  // namespace
}  // namespace vt::gpu

using namespace vt::gpu;

extern "C" {

vt_status vt_apply_token_bitmask(vt_context* ctx, void* logits, int32_t num_rows, int32_t vocab_size,
                                 vt_dtype act_dtype, const int32_t* bitmask, int32_t words_per_row,
                                 const int32_t* row_indices, int32_t num_masked_rows) {
  const char* op = "vt_apply_token_bitmask";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_storage_dtype(op, "act_dtype", act_dtype));
  VT_TRY(vt::check_apply_token_bitmask_args(op, logits, num_rows, vocab_size, bitmask, words_per_row, row_indices,
                                            num_masked_rows));
  if (num_masked_rows == 0) return vt::ok();
  const size_t slices = ceil_div(size_t(vocab_size), kThreads * kTokensPerThread);
  dim3 grid(grid_blocks(ctx, size_t(num_masked_rows), kThreads), unsigned(slices < kMaxSlices ? slices : kMaxSlices));
  with_dtype(act_dtype, [&](auto a) {
    using A = typename decltype(a)::type;
    auto kernel = &apply_token_bitmask_kernel<A>;
    VT_LAUNCH(kernel, grid, kThreads, 0, ctx->stream, static_cast<A*>(logits), num_rows, vocab_size,
              reinterpret_cast<const uint32_t*>(bitmask), words_per_row, row_indices, num_masked_rows);
  });
  return launch_status(op);
}

}  // extern "C"
