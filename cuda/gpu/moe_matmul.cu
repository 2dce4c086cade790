// vt_moe_matmul on CUDA: the experts' linear layers of a mixture in one launch, over the slots
// vt_moe_group sorted by expert. Two kernels, picked on the host by the average slots per expert
// (the counts themselves stay on the device, so a step with this op can be captured in a graph):
//   few (decode): a gather GEMV. Block b along x takes the b-th tile of kGemvSlots sorted slots
//     of one expert, and a warp one output column of that expert; each lane reads a step of the
//     column's weights (16 bytes of a plain row, or a chunk of 32 quantized values with its
//     scales) and multiplies it with the tile's rows of x (quantized weights by dp4a, x's rows
//     quantized to int8 beforehand, as vt_matmul's decode does). So each used expert's weights
//     are read once from DRAM, in their stored size (its tiles' blocks share them through L2),
//     and an unused expert's not at all.
//   many (prefill), 16-bit activations, weights quantized or in the activations' dtype, x and w
//     16-byte aligned with k % 8 == 0 (always so for the engine's buffers): the tensor cores'
//     tile (gemm_tensor_core.cuh's gemm_tile) over each expert's slots, BM at a time, x's rows
//     gathered by slot and the outputs scattered back to their slots.
//   Otherwise (f32 activations, mixed 16-bit dtypes, unaligned rows: tests) the gather GEMV at
//   any count.
//   Both find their block's tile (block_tile) by a scan of the experts' counts: the grid is sized
//   for the most tiles the slots can make, and blocks past the last return. So a step of one
//   token launches blocks for its top-k experts' tiles, not for every expert of the layer (128
//   in Qwen3-30B-A3B, whose blocks would nearly all return at once, but each at a block's cost).
#include <algorithm>
#include <type_traits>

#include "checks.h"
#include "common.cuh"
#include "gemm_tensor_core.cuh"
#include "quant.cuh"
#include "quant.h"
#include "quant_dot.cuh"
#include "vec.cuh"

namespace vt::gpu {
namespace {

constexpr int kGemvWarps = 8;  // output columns per block of the gather GEMV
constexpr int kGemvSlots = 4;  // slots of a gather GEMV block's tile, each weight read serves them all
// The tiled kernel from this many slots per expert on average: below it, most experts' tiles
// would be nearly empty while the GEMV reads the same weight bytes.
constexpr int kTiledMinSlotsPerExpert = 8;

// One output column's weights as stored, read S values (one 16-byte load, or 1) at a time.
template <class W, int S>
struct PlainColumn {
  const W* row;
  __device__ __forceinline__ void read(int step, float (&values)[S]) const {
    if constexpr (S == 1)
      values[0] = to_float(row[step]);
    else
      load_floats<S>(row + size_t(step) * S, values);
  }
};

template <class W, int S>
struct PlainExperts {
  static constexpr int kStep = S;
  const W* w;
  int32_t n, k;
  __device__ __forceinline__ PlainColumn<W, S> column(int32_t expert, int32_t j) const {
    return {w + (size_t(expert) * n + j) * size_t(k)};
  }
};

// Experts whose counts a lane of find_tile loads at once: 4 per lane, 128 per pass of the warp,
// so that a mixture of up to 128 experts (Qwen3-30B-A3B's) costs one round trip to memory before
// its block knows its tile, not one per 32 experts.
constexpr int kScanLoads = 4;

// Run by the first warp: which expert's tile `tile` is (experts in order, each with
// ceil(count / BM) tiles), its first sorted slot and its slot count. expert stays -1 past the
// last tile.
template <int BM>
__device__ __forceinline__ void find_tile(const int32_t* expert_offsets, int32_t num_experts, int32_t tile,
                                          int32_t& expert, int32_t& first, int32_t& count) {
  const int lane = threadIdx.x;
  int32_t before = 0;  // tiles of the experts already scanned
  for (int32_t e0 = 0; e0 < num_experts && before <= tile; e0 += kWarpSize * kScanLoads) {
    int32_t slots[kScanLoads];
#pragma unroll
    for (int j = 0; j < kScanLoads; j++) {
      const int32_t e = e0 + j * kWarpSize + lane;
      slots[j] = e < num_experts ? expert_offsets[e + 1] - expert_offsets[e] : 0;
    }
#pragma unroll
    for (int j = 0; j < kScanLoads; j++) {
      const int32_t e = e0 + j * kWarpSize + lane;
      const int32_t tiles = (slots[j] + BM - 1) / BM;
      int32_t through = tiles;  // inclusive prefix sum over the warp
#pragma unroll
      for (int d = 1; d < kWarpSize; d *= 2) {
        const int32_t v = __shfl_up_sync(0xffffffffu, through, d);
        if (lane >= d) through += v;
      }
      const int32_t start = before + through - tiles;
      if (tile >= start && tile < start + tiles) {
        expert = e;
        first = expert_offsets[e] + (tile - start) * BM;
        count = min(BM, slots[j] - (tile - start) * BM);
      }
      before += __shfl_sync(0xffffffffu, through, kWarpSize - 1);
    }
  }
}

// The tile of sorted slots block `tile` takes: find_tile run by the block's first warp and shared
// with the rest. Every thread of the block calls it.
struct ExpertTile {
  int32_t expert, first, count;
};

template <int BM>
__device__ __forceinline__ ExpertTile block_tile(const int32_t* expert_offsets, int32_t num_experts, int32_t tile) {
  __shared__ ExpertTile shared;
  if (threadIdx.x == 0) shared.expert = -1;
  __syncwarp();
  if (threadIdx.x < kWarpSize)
    find_tile<BM>(expert_offsets, num_experts, tile, shared.expert, shared.first, shared.count);
  __syncthreads();
  return shared;
}

// Each used expert's last tile may be partial: at most one per expert beyond num_slots / BM.
inline unsigned most_tiles(int32_t num_slots, int32_t num_experts, int bm) {
  return unsigned(num_slots / bm + std::min(num_slots, num_experts));
}

// Launch: grid (most_tiles(kGemvSlots), ceil(n / kGemvWarps)), kGemvWarps warps.
template <class A, class Experts>
__global__ void moe_gemv_kernel(const A* x, int32_t slots_per_x_row, const Experts experts, const int32_t* sorted_slots,
                                const int32_t* expert_offsets, int32_t num_experts, A* out, int32_t n, int32_t k) {
  constexpr int S = Experts::kStep;
  const ExpertTile tile = block_tile<kGemvSlots>(expert_offsets, num_experts, int32_t(blockIdx.x));
  const int lane = threadIdx.x % kWarpSize;
  const int32_t column = blockIdx.y * kGemvWarps + threadIdx.x / kWarpSize;
  if (tile.expert < 0 || column >= n) return;
  const auto weights = experts.column(tile.expert, column);
  const int32_t* slots = sorted_slots + tile.first;
  const A* inputs[kGemvSlots];
#pragma unroll
  for (int i = 0; i < kGemvSlots; i++) inputs[i] = x + size_t(slots[min(i, tile.count - 1)] / slots_per_x_row) * k;
  float sums[kGemvSlots] = {};
  for (int32_t step = lane; step < k / S; step += kWarpSize) {
    float values[S];
    weights.read(step, values);
#pragma unroll
    for (int i = 0; i < kGemvSlots; i++) {
      const A* in = inputs[i] + size_t(step) * S;
#pragma unroll
      for (int l = 0; l < S; l++) sums[i] += values[l] * to_float(in[l]);
    }
  }
#pragma unroll
  for (int i = 0; i < kGemvSlots; i++) {
    const float total = warp_sum(sums[i]);
    if (i < tile.count && lane == 0) out[size_t(slots[i]) * n + column] = from_float<A>(total);
  }
}

// The gather GEMV over quantized experts: x's rows quantized to int8 beforehand, each chunk of
// a column's weights decoded once and multiplied with the tile's slots by dp4a. Launch as
// moe_gemv_kernel.
template <class A, vt_dtype F>
__global__ void moe_quant_gemv_kernel(const quant_dot::QuantizedRows x, int32_t slots_per_x_row,
                                      const uint8_t* __restrict__ w, const int32_t* sorted_slots,
                                      const int32_t* expert_offsets, int32_t num_experts, A* out, int32_t n,
                                      int32_t k) {
  const ExpertTile tile = block_tile<kGemvSlots>(expert_offsets, num_experts, int32_t(blockIdx.x));
  const int lane = threadIdx.x % kWarpSize;
  const int32_t column = blockIdx.y * kGemvWarps + threadIdx.x / kWarpSize;
  if (tile.expert < 0 || column >= n) return;
  const size_t row_bytes = size_t(k / quant::block_elements(F)) * quant::block_bytes(F);
  const uint8_t* weights = w + (size_t(tile.expert) * n + column) * row_bytes;
  const int32_t* slots = sorted_slots + tile.first;
  int x_rows[kGemvSlots];
#pragma unroll
  for (int i = 0; i < kGemvSlots; i++) x_rows[i] = slots[min(i, tile.count - 1)] / slots_per_x_row;
  float sums[kGemvSlots] = {};
  for (int c = lane; c < k / 32; c += kWarpSize) {
    const quant_dot::WeightChunk chunk = quant_dot::weight_chunk<F>(weights, c);
#pragma unroll
    for (int i = 0; i < kGemvSlots; i++) sums[i] += quant_dot::chunk_dot(chunk, x, x_rows[i], c);
  }
#pragma unroll
  for (int i = 0; i < kGemvSlots; i++) {
    const float total = warp_sum(sums[i]);
    if (i < tile.count && lane == 0) out[size_t(slots[i]) * n + column] = from_float<A>(total);
  }
}

// Launch: grid (most tiles the slots can make, ceil(n / BN)), 256 threads.
// x's rows, w's and out's are read and written 16 bytes at a time (the caller checks alignment).
template <class A, class W, int BM, int BN>
__global__ void __launch_bounds__(matmul::kTcThreads, 2)
    moe_gemm_kernel(const A* __restrict__ x, int32_t slots_per_x_row, const W w, const int32_t* sorted_slots,
                    const int32_t* expert_offsets, int32_t num_experts, A* __restrict__ out, int32_t n, int32_t k,
                    bool vector_stores) {
  const ExpertTile tile = block_tile<BM>(expert_offsets, num_experts, int32_t(blockIdx.x));
  if (tile.expert < 0) return;  // the whole block: past the last tile
  const int32_t* slots = sorted_slots + tile.first;
  matmul::gemm_tile<A, BM, BN, true>(matmul::GatheredRows<A, BM>(x, k, slots_per_x_row, slots, tile.count),
                                     w.skip_rows(size_t(tile.expert) * size_t(n), k), static_cast<const A*>(nullptr),
                                     matmul::SlotOutput<A>{out, slots, tile.count, n}, int(blockIdx.y) * BN, n, k,
                                     vector_stores);
}

template <class A, class W, int B>
void launch_moe_gemm_tiles(vt_context* ctx, const A* x, int32_t slots_per_x_row, const W& w,
                           const int32_t* sorted_slots, const int32_t* expert_offsets, A* out, int32_t num_slots,
                           int32_t num_experts, int32_t n, int32_t k) {
  const dim3 grid(most_tiles(num_slots, num_experts, B), ceil_div(size_t(n), B));
  const bool vector_stores = n % 8 == 0 && is_aligned(out, 16);
  auto kernel = &moe_gemm_kernel<A, W, B, B>;
  VT_LAUNCH(kernel, grid, matmul::kTcThreads, 0, ctx->stream, x, slots_per_x_row, w, sorted_slots, expert_offsets,
            num_experts, out, n, k, vector_stores);
}

// The tiled kernel, its tiles sized as the dense GEMM sizes them for m = slots per expert.
template <class A, class W>
void launch_moe_gemm(vt_context* ctx, const A* x, int32_t slots_per_x_row, const W& w, const int32_t* sorted_slots,
                     const int32_t* expert_offsets, A* out, int32_t num_slots, int32_t num_experts, int32_t n,
                     int32_t k) {
  if (num_slots <= matmul::kTcSmallTileMaxRows * num_experts)
    launch_moe_gemm_tiles<A, W, 64>(ctx, x, slots_per_x_row, w, sorted_slots, expert_offsets, out, num_slots,
                                    num_experts, n, k);
  else
    launch_moe_gemm_tiles<A, W, 128>(ctx, x, slots_per_x_row, w, sorted_slots, expert_offsets, out, num_slots,
                                     num_experts, n, k);
}

// The gather GEMVs' grid: blocks for tiles of slots (only the used experts' ones do work) by
// groups of columns.
inline dim3 gemv_grid(int32_t num_slots, int32_t num_experts, int32_t n) {
  return dim3(most_tiles(num_slots, num_experts, kGemvSlots), ceil_div(n, kGemvWarps));
}

template <class A, class Experts>
void launch_moe_gemv(vt_context* ctx, const A* x, int32_t slots_per_x_row, const Experts& experts,
                     const int32_t* sorted_slots, const int32_t* expert_offsets, A* out, int32_t num_slots,
                     int32_t num_experts, int32_t n, int32_t k) {
  auto kernel = &moe_gemv_kernel<A, Experts>;
  VT_LAUNCH(kernel, gemv_grid(num_slots, num_experts, n), kGemvWarps * kWarpSize, 0, ctx->stream, x, slots_per_x_row,
            experts, sorted_slots, expert_offsets, num_experts, out, n, k);
}

}  // namespace
}  // namespace vt::gpu

using namespace vt::gpu;

extern "C" vt_status vt_moe_matmul(vt_context* ctx, const void* x, int32_t slots_per_x_row, const void* w,
                                   const int32_t* sorted_slots, const int32_t* expert_offsets, void* out,
                                   int32_t num_slots, int32_t num_experts, int32_t n, int32_t k, vt_dtype act_dtype,
                                   vt_dtype weight_dtype) {
  const char* op = "vt_moe_matmul";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_storage_dtype(op, "act_dtype", act_dtype));
  VT_TRY(vt::check_moe_matmul_args(op, x, slots_per_x_row, w, sorted_slots, expert_offsets, out, num_slots, num_experts,
                                   n, k, weight_dtype));
  if (num_slots == 0) return vt::ok();
  const bool quantized = vt::quant::is_quantized(weight_dtype);
  const int32_t x_rows = num_slots / slots_per_x_row;
  // The quantized GEMV quantizes x into the context's scratch; when it would not fit, 16-bit
  // activations take the tiled kernel, which reads x as it is.
  const bool gemv_fits = !quantized || quant_dot::QuantizedRows::bytes(
                                           x_rows, k, vt::quant::block_elements(weight_dtype)) <= ctx->scratch_bytes;
  // The tiled kernel's 16-byte loads: k is whole blocks of quantized weights, and plain ones
  // start every expert aligned when k % 8 == 0.
  const bool tile_loads = k % 8 == 0 && is_aligned(x, 16) && (quantized || is_aligned(w, 16));
  const bool tiled = act_dtype != VT_F32 && (quantized || weight_dtype == act_dtype) && tile_loads &&
                     (num_slots >= kTiledMinSlotsPerExpert * num_experts || !gemv_fits);
  if (quantized) {
    VT_TRY(check_quantized_weights(op, w, weight_dtype));
    VT_REQUIRE(tiled || gemv_fits, op,
               "x quantized to int8 would need more than the context's scratch: fewer slots per call");
  }
  with_dtype(act_dtype, [&](auto a) {
    using A = typename decltype(a)::type;
    const auto* xa = static_cast<const A*>(x);
    auto* outa = static_cast<A*>(out);
    const size_t row_bytes =
        quantized ? size_t(k / vt::quant::block_elements(weight_dtype)) * vt::quant::block_bytes(weight_dtype) : 0;
    const auto* wq = static_cast<const uint8_t*>(w);
    if constexpr (!std::is_same_v<A, float>) {
      if (tiled) {
        if (quantized)
          launch_moe_gemm(ctx, xa, slots_per_x_row, matmul::QuantizedWeights<A>{wq, weight_dtype, row_bytes},
                          sorted_slots, expert_offsets, outa, num_slots, num_experts, n, k);
        else
          launch_moe_gemm(ctx, xa, slots_per_x_row, matmul::HalfWeights<A>{static_cast<const A*>(w)}, sorted_slots,
                          expert_offsets, outa, num_slots, num_experts, n, k);
        return;
      }
    }
    if (quantized) {
      const auto xq = quant_dot::QuantizedRows::in(ctx->scratch, x_rows, k, vt::quant::block_elements(weight_dtype));
      quant_dot::quantize_rows(ctx->stream, xa, x_rows, xq);
      quant_dot::with_format(weight_dtype, [&](auto format) {
        auto kernel = &moe_quant_gemv_kernel<A, decltype(format)::value>;
        VT_LAUNCH(kernel, gemv_grid(num_slots, num_experts, n), kGemvWarps * kWarpSize, 0, ctx->stream, xq,
                  slots_per_x_row, wq, sorted_slots, expert_offsets, num_experts, outa, n, k);
      });
      return;
    }
    with_dtype(weight_dtype, [&](auto b) {
      using W = typename decltype(b)::type;
      constexpr int kVec = 16 / int(sizeof(W));
      const auto* ww = static_cast<const W*>(w);
      if (k % kVec == 0 && is_aligned(w, 16))
        launch_moe_gemv(ctx, xa, slots_per_x_row, PlainExperts<W, kVec>{ww, n, k}, sorted_slots, expert_offsets, outa,
                        num_slots, num_experts, n, k);
      else
        launch_moe_gemv(ctx, xa, slots_per_x_row, PlainExperts<W, 1>{ww, n, k}, sorted_slots, expert_offsets, outa,
                        num_slots, num_experts, n, k);
    });
  });
  return launch_status(op);
}
