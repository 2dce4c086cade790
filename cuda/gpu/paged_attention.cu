// vt_paged_attention on the GPU: argument checks, the split-K plan, and the dispatch of a batch
// mixing decodes and prefill chunks to the two kernels designed for each bound.
//
// Dispatch: both kernels take the whole batch and each keeps its own sequences, decided on the
// device from query_start_loc (the host never reads index arrays, so a step can be captured in
// a graph): the decode kernel (paged_attention_decode.cuh) takes the sequences with exactly one
// query token, the prefill kernel (paged_attention_prefill.cuh) those with more. The decode
// kernel is always launched (its blocks of other sequences exit at once); the prefill kernel only
// when max_query_len > 1, i.e. never for a pure decode step. Running decodes through the prefill
// kernel instead would waste most of a 128-row tensor-core tile per decode and forgo split-K.
//
// Split-K scratch: decodes split their context into partitions of kDecodePartition (512) keys when
// max_seq_len (or the sliding window) exceeds one partition; the partials need
// num_seqs * num_q_heads * partitions * (head_dim + 2) floats. They live in the context's fixed
// scratch buffer (ctx->scratch, allocated with the context, so a graph capture never allocates);
// when a batch's partials would not fit, partitions grow (fewer, longer) until they do.
#include <string>
#include <type_traits>

#include "checks.h"
#include "paged_attention_decode.cuh"
#include "paged_attention_prefill.cuh"
#include "vec.cuh"

namespace {

using namespace vt::gpu;
using namespace vt::gpu::attention;

constexpr int kMaxPartitions = 1024;  // the combine kernel keeps one weight per partition
constexpr size_t kDefaultSharedBytes = 48 * 1024;

// head_dim rounded up to a kernel instance: 64, 128 or 256 (others run padded with masking).
template <class F>
void with_padded_head_dim(int head_dim, F&& f) {
  if (head_dim <= 64)
    f(std::integral_constant<int, 64>{});
  else if (head_dim <= 128)
    f(std::integral_constant<int, 128>{});
  else
    f(std::integral_constant<int, 256>{});
}

// Query heads per decode block: the group rounded up to a power of two, at most 8. With f32
// activations (a correctness path: the model runs bf16 on GPUs) only 1 and 8 are instantiated,
// the extra heads of a smaller group masked, which saves a third of this file's compile time.
int heads_per_decode_block(int group, vt_dtype act_dtype) {
  if (act_dtype == VT_F32) return group == 1 ? 1 : 8;
  int gt = 1;
  while (gt < group && gt < 8) gt *= 2;
  return gt;
}

// Opts a kernel in to `bytes` of dynamic shared memory when that is above the default 48 KB.
template <class Kernel>
vt_status allow_shared_memory(vt_context* ctx, const char* op, Kernel kernel, size_t bytes, int head_dim) {
  if (bytes <= kDefaultSharedBytes) return VT_OK;
  if (bytes > ctx->max_shared_bytes)
    return vt::fail(VT_ERR_UNSUPPORTED, std::string(op) + ": head_dim " + std::to_string(head_dim) + " needs " +
                                            std::to_string(bytes) + " bytes of shared memory per block, the " +
                                            "device allows " + std::to_string(ctx->max_shared_bytes));
  VT_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)), op);
  return VT_OK;
}

template <class ActT, class CacheT, int DPAD, int GT>
vt_status launch_decode(vt_context* ctx, const char* op, const Params& p, dim3 grid) {
  auto kernel = DecodeKernel<ActT, CacheT, DPAD, GT>::kernel();
  const size_t smem = DecodeKernel<ActT, CacheT, DPAD, GT>::smem_bytes;
  VT_TRY(allow_shared_memory(ctx, op, kernel, smem, p.head_dim));
  VT_LAUNCH(kernel, grid, dim3(kDecodeThreads), smem, ctx->stream, p);
  return VT_OK;
}

template <class ActT, class CacheT, int DPAD>
vt_status launch_decode(vt_context* ctx, const char* op, const Params& p, int gt, dim3 grid) {
  if (gt == 1) return launch_decode<ActT, CacheT, DPAD, 1>(ctx, op, p, grid);
  if constexpr (!std::is_same_v<ActT, float>) {
    if (gt == 2) return launch_decode<ActT, CacheT, DPAD, 2>(ctx, op, p, grid);
    if (gt == 4) return launch_decode<ActT, CacheT, DPAD, 4>(ctx, op, p, grid);
  }
  return launch_decode<ActT, CacheT, DPAD, 8>(ctx, op, p, grid);
}

// The prefill kernel for (ActT, CacheT): tensor cores when both are the same 16-bit type, SIMT
// for f32 activations.
template <class ActT, class CacheT, int DPAD>
vt_status launch_prefill(vt_context* ctx, const char* op, const Params& p, int max_query_len, int num_seqs) {
  const size_t rows = size_t(max_query_len) * p.group;
  if constexpr (std::is_same_v<ActT, CacheT> && !std::is_same_v<ActT, float>) {
    using Tile = MmaTile<DPAD>;
    const size_t smem = Tile::smem_bytes(sizeof(ActT));
    auto kernel = &paged_attention_prefill_mma_kernel<ActT, DPAD>;
    VT_TRY(allow_shared_memory(ctx, op, kernel, smem, p.head_dim));
    const dim3 grid(ceil_div(rows, Tile::BM), unsigned(p.num_kv_heads), unsigned(num_seqs));
    VT_LAUNCH(kernel, grid, dim3(kPrefillThreads), smem, ctx->stream, p);
  } else {
    auto kernel = &paged_attention_prefill_simt_kernel<CacheT, DPAD>;
    const dim3 grid(ceil_div(rows, SimtTile<DPAD>::BM), unsigned(p.num_kv_heads), unsigned(num_seqs));
    VT_LAUNCH(kernel, grid, dim3(kPrefillThreads), 0, ctx->stream, p);
  }
  return vt::ok();
}

}  // namespace

extern "C" vt_status vt_paged_attention(vt_context* ctx, void* out, const void* q, const void* k_cache,
                                        const void* v_cache, const int32_t* block_tables, const int32_t* seq_lens,
                                        const int32_t* query_start_loc, int32_t num_seqs, int32_t num_tokens,
                                        int32_t max_query_len, int32_t max_seq_len, int32_t max_blocks_per_seq,
                                        int32_t num_q_heads, int32_t num_kv_heads, int32_t head_dim,
                                        int32_t q_row_stride, int32_t block_size, float scale, int32_t sliding_window,
                                        float soft_cap, vt_dtype act_dtype, vt_dtype cache_dtype) {
  const char* op = "vt_paged_attention";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(check_act_storage(op, act_dtype, "cache_dtype", cache_dtype));
  VT_TRY(vt::check_paged_attention_sizes(op, num_seqs, num_tokens, max_blocks_per_seq));
  // The launch plan is sized from these (the CPU backend checks the batch against them instead).
  VT_REQUIRE(max_query_len >= 0 && max_seq_len >= 0, op, "max_query_len and max_seq_len must be >= 0");
  VT_TRY(vt::check_paged_attention_args(op, out, q, k_cache, v_cache, block_tables, seq_lens, query_start_loc,
                                        num_q_heads, num_kv_heads, head_dim, q_row_stride, block_size, soft_cap));
  if (head_dim % 8 != 0 || head_dim > 256)
    return vt::fail(VT_ERR_UNSUPPORTED,
                    std::string(op) + ": head_dim " + std::to_string(head_dim) + " is not a multiple of 8 up to 256");
  if ((block_size & (block_size - 1)) != 0)
    return vt::fail(VT_ERR_UNSUPPORTED,
                    std::string(op) + ": block_size " + std::to_string(block_size) + " is not a power of two");
  if (!is_aligned(k_cache, 16) || !is_aligned(v_cache, 16))
    return vt::fail(VT_ERR_UNSUPPORTED, std::string(op) + ": k_cache and v_cache must be 16-byte aligned");
  if (num_seqs > 65535 || num_q_heads > 65535)
    return vt::fail(VT_ERR_UNSUPPORTED, std::string(op) + ": more than 65535 sequences or query heads in one call");
  if (num_tokens == 0 || num_seqs == 0) return vt::ok();

  Params p{};
  p.out = out;
  p.q = q;
  p.k_cache = k_cache;
  p.v_cache = v_cache;
  p.block_tables = block_tables;
  p.seq_lens = seq_lens;
  p.query_start_loc = query_start_loc;
  p.max_blocks_per_seq = max_blocks_per_seq;
  p.num_q_heads = num_q_heads;
  p.num_kv_heads = num_kv_heads;
  p.group = num_q_heads / num_kv_heads;
  p.head_dim = head_dim;
  p.q_row_stride = q_row_stride;
  p.block_size = block_size;
  while ((1 << p.block_shift) < block_size) p.block_shift++;
  p.sliding_window = sliding_window;
  p.scale = scale;
  p.soft_cap = soft_cap;

  // Split-K plan for the decodes (see the header comment).
  const int max_keys = sliding_window > 0 && sliding_window < max_seq_len ? sliding_window : max_seq_len;
  auto partitions_of = [&](int64_t partition) {
    return int(max_keys <= partition ? 1 : (max_keys + partition - 1) / partition);
  };
  int64_t partition = kDecodePartition;
  int partitions = partitions_of(partition);
  float* scratch = static_cast<float*>(ctx->scratch);
  const size_t scratch_bytes = ctx->scratch_bytes;
  if (partitions > 1) {
    auto scratch_floats = [&](int parts) { return size_t(num_seqs) * num_q_heads * parts * size_t(head_dim + 2); };
    while (partitions > 1 &&
           (partitions > kMaxPartitions || scratch_floats(partitions) * sizeof(float) > scratch_bytes)) {
      partition *= 2;
      partitions = partitions_of(partition);
    }
  }
  p.partition_size = int(partition < INT32_MAX ? partition : INT32_MAX);
  p.max_partitions = partitions;
  if (partitions > 1) {
    const size_t n = size_t(num_seqs) * num_q_heads * partitions;
    p.partial_max = scratch;
    p.partial_sum = scratch + n;
    p.partial_out = scratch + 2 * n;
  }
  const int gt = heads_per_decode_block(p.group, act_dtype);
  p.head_chunks = (p.group + gt - 1) / gt;

  vt_status status = VT_OK;
  with_act_storage(act_dtype, cache_dtype, [&](auto act_tag, auto cache_tag) {
    using ActT = typename decltype(act_tag)::type;
    using CacheT = typename decltype(cache_tag)::type;
    with_padded_head_dim(head_dim, [&](auto dpad) {
      constexpr int DPAD = decltype(dpad)::value;
      const dim3 decode_grid(unsigned(partitions), unsigned(num_kv_heads * p.head_chunks), unsigned(num_seqs));
      status = launch_decode<ActT, CacheT, DPAD>(ctx, op, p, gt, decode_grid);
      if (status == VT_OK && partitions > 1) {
        auto combine = &paged_attention_combine_kernel<ActT>;
        VT_LAUNCH(combine, dim3(unsigned(num_q_heads), unsigned(num_seqs)), dim3(kCombineThreads),
                  size_t(partitions) * sizeof(float), ctx->stream, p);
      }
      if (status == VT_OK && max_query_len > 1)
        status = launch_prefill<ActT, CacheT, DPAD>(ctx, op, p, max_query_len, num_seqs);
    });
  });
  VT_TRY(status);
  return launch_status(op);
}
