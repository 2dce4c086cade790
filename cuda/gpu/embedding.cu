// Token embedding lookup: a gather of table rows, converted from the weight dtype to the
// activation dtype and scaled (Gemma multiplies its embeddings by sqrt(hidden_size)).
//
// Memory bound (one read and one write per element, no arithmetic): a block copies whole rows
// (a grid-stride loop over tokens), its threads striding over the row in Packs of 8 elements
// (16 bytes of a 16-bit dtype) so every warp reads and writes contiguous 256..512-byte spans. A
// hidden size that is not a multiple of 8 or a misaligned pointer takes element accesses.
#include "checks.h"
#include "vec.cuh"

namespace vt::gpu {
namespace {

constexpr int kMaxThreads = 256;
constexpr int kVec = 8;

template <class A, class W>
__global__ void embedding_kernel(const int32_t* token_ids, int32_t num_tokens, const W* table, int32_t vocab_size,
                                 int32_t hidden_size, float scale, A* out, bool vector) {
  for (int32_t t = blockIdx.x; t < num_tokens; t += gridDim.x) {
    const int32_t id = token_ids[t];
    const bool inside = id >= 0 && id < vocab_size;
    const W* row = table + size_t(inside ? id : 0) * hidden_size;
    A* y = out + size_t(t) * hidden_size;
    if (vector) {
      for (int32_t j = threadIdx.x; j < hidden_size / kVec; j += blockDim.x) {
        float v[kVec];
        if (inside) {
          load_floats<kVec>(row + j * kVec, v);
#pragma unroll
          for (int e = 0; e < kVec; e++) v[e] *= scale;
        } else {
#pragma unroll
          for (int e = 0; e < kVec; e++) v[e] = 0.0f;
        }
        store_floats<kVec>(y + j * kVec, v);
      }
    } else {
      for (int32_t i = threadIdx.x; i < hidden_size; i += blockDim.x)
        y[i] = from_float<A>(inside ? to_float(row[i]) * scale : 0.0f);
    }
  }
}

}  // namespace
}  // namespace vt::gpu

using namespace vt::gpu;

extern "C" {

vt_status vt_embedding(vt_context* ctx, const int32_t* token_ids, int32_t num_tokens, const void* table,
                       int32_t vocab_size, int32_t hidden_size, float scale, void* out, vt_dtype weight_dtype,
                       vt_dtype act_dtype) {
  const char* op = "vt_embedding";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(check_act_storage(op, act_dtype, "weight_dtype", weight_dtype));
  VT_TRY(vt::check_embedding_args(op, token_ids, table, out, num_tokens, vocab_size, hidden_size));
  if (num_tokens == 0 || hidden_size == 0) return vt::ok();
  const bool vector = hidden_size % kVec == 0 && is_aligned(table, 16) && is_aligned(out, 16);
  const int threads = row_threads(vector ? size_t(hidden_size / kVec) : size_t(hidden_size), kMaxThreads);
  const unsigned blocks = grid_blocks(ctx, size_t(num_tokens), threads);
  with_act_storage(act_dtype, weight_dtype, [&](auto a, auto w) {
    using A = typename decltype(a)::type;
    using W = typename decltype(w)::type;
    auto kernel = &embedding_kernel<A, W>;
    VT_LAUNCH(kernel, blocks, threads, 0, ctx->stream, token_ids, num_tokens, static_cast<const W*>(table), vocab_size,
              hidden_size, scale, static_cast<A*>(out), vector);
  });
  return launch_status(op);
}

}  // extern "C"
