// Quantized weight formats on the GPU (cuda/shared/quant.h's blocks): vt_convert's quantizing
// and dequantizing, and vt_matmul with quantized weights.
//   m <= 8 (decode): each block asks L2 for the first weights of its columns (WeightPrefetch),
//     quantizes x to int8 into shared memory meanwhile (quant_dot.cuh; all of it at once for
//     one row up to k = 32768), then each warp takes 2 output columns; each lane takes whole
//     chunks of 32 values of the rows (every 32nd chunk) with wide loads, their scales read
//     once, and multiplies them with every row of x by dp4a, so w is read once, in its
//     quantized size. Quantizing in the block spares a kernel launch per matmul, which at a few
//     microseconds per decode matmul would cost as much as the weights' bytes.
//   m > 8 (prefill), 16-bit activations: gemm_tensor_core.cuh's wmma kernel, its w tiles
//     dequantized to the activations' dtype as they are staged (8 values per thread and chunk,
//     the chunk's scales decoded once); w is read once per block row of the output, as the
//     16-bit GEMM reads it, in fewer bytes.
//   m > 8, f32 activations (tests, f32 models): 64 x 64 output tiles on the CUDA cores; per step
//     of 32 k-values the block dequantizes its 64 rows of w and loads 64 rows of x into shared
//     memory as f32, and each thread accumulates a 4 x 4 patch with FMAs.
#include <string>
#include <type_traits>

#include "checks.h"
#include "gemm_tensor_core.cuh"
#include "quant.cuh"
#include "quant_dot.cuh"

namespace vt::gpu {
namespace {

constexpr int kMaxGemvRows = 8;
constexpr int kGemvWarps = 8;
constexpr int kGemvColumnsPerWarp = 2;  // each chunk of x read from shared memory serves both
constexpr int kGemvColumns = kGemvWarps * kGemvColumnsPerWarp;
// Shared memory for x quantized: up to 32 KiB of int8 values (all of k at m = 1 up to 32768).
constexpr int kGemvSharedValues = 32 * 1024;

// Values of each row of x a block quantizes at a time: whole scale blocks, m rows in the buffer.
inline int gemv_tile_values(int m, int k) {
  const int fit = kGemvSharedValues / m / 256 * 256;
  return k < fit ? k : fit;
}

// The gemv streams its weights through L2 a window ahead of its loads, as each warp has only a
// few loads in flight: with 2 blocks per SM (a 4096-column layer fills 256 blocks), one round
// trip to DRAM (most of a microsecond under load) per pass over 32 chunks would leave most of the
// bandwidth unused, while L2 answers in a fraction of that. Prefetches are hints: they fetch lines
// and wait for nothing.
//   - Before the block quantizes x, each warp asks for the first window of its columns' rows in
//     the tile, a 128-byte line per lane (half the lanes per column), so that the quantizing and
//     its barriers overlap the DRAM latency: a small layer's weights take only about 2 µs to read
//     at m = 1 (4096 x 4096 in Q4_K on an H200), and most of its 2304-byte rows are on the way.
//   - Then each lane, as it loads chunk c, asks for the bytes a window after it, so the lines
//     come in ahead of the loads over the rest of the row.
template <vt_dtype F>
struct WeightPrefetch {
  static constexpr int kLanesPerColumn = kWarpSize / kGemvColumnsPerWarp;
  static_assert(kWarpSize % kGemvColumnsPerWarp == 0, "whole lanes per column");
  static constexpr size_t kWindow = kLanesPerColumn * 128;
  static constexpr int kChunksPerBlock = quant::block_elements(F) / 32;
  // The warp's first column's row of w from the tile's first byte on, its bytes in the tile, and
  // the distance between two columns' rows.
  const uint8_t* tile;
  size_t tile_bytes, row_bytes;

  // About where chunk c's bytes are in the tile (a K-quant's block keeps a chunk's parts in
  // several places).
  __device__ __forceinline__ static size_t chunk_position(int c) {
    constexpr size_t block = quant::block_bytes(F);
    return size_t(c / kChunksPerBlock) * block + size_t(c % kChunksPerBlock) * (block / kChunksPerBlock);
  }
  __device__ __forceinline__ void first_window(int columns) const {
    const int lane = threadIdx.x % kWarpSize;
    const int col = lane / kLanesPerColumn;
    const size_t line = size_t(lane % kLanesPerColumn) * 128;
    if (col < columns && line < tile_bytes) vt_prefetch_l2(tile + size_t(col) * row_bytes + line);
  }
  __device__ __forceinline__ void ahead_of(int col, int c) const {
    const size_t ahead = chunk_position(c) + kWindow;
    if (ahead < tile_bytes) vt_prefetch_l2(tile + size_t(col) * row_bytes + ahead);
  }
};

// Decode: the block quantizes x (m rows, a tile of tile_values of each row at a time) into shared
// memory, then each warp multiplies its kGemvColumnsPerWarp columns of w with it, each lane a
// chunk of 32 values at a time. Launch: grid ceil(n / kGemvColumns), kGemvWarps warps.
template <class TX, vt_dtype F>
__global__ void __launch_bounds__(kGemvWarps* kWarpSize)
    quant_gemv_kernel(const TX* __restrict__ x, const uint8_t* __restrict__ w, const TX* __restrict__ bias,
                      TX* __restrict__ out, int m, int n, int k, int tile_values) {
  constexpr int kBlock = quant::block_elements(F);
  __shared__ __align__(16) int8_t tile_q[kGemvSharedValues];
  __shared__ __align__(16) float tile_d[kGemvSharedValues / 32];
  __shared__ __align__(16) int32_t tile_sums[kGemvSharedValues / 16];
  const int lane = threadIdx.x % kWarpSize;
  const int j0 = blockIdx.x * kGemvColumns + threadIdx.x / kWarpSize * kGemvColumnsPerWarp;
  const size_t row_bytes = size_t(k / kBlock) * quant::block_bytes(F);
  float acc[kGemvColumnsPerWarp][kMaxGemvRows] = {};
  for (int t0 = 0; t0 < k; t0 += tile_values) {
    const int columns = min(tile_values, k - t0);
    const quant_dot::QuantizedRows xq{tile_q, tile_d, tile_sums, columns, kBlock};
    constexpr size_t kBlockBytes = quant::block_bytes(F);
    const WeightPrefetch<F> prefetch{w + size_t(j0) * row_bytes + size_t(t0 / kBlock) * kBlockBytes,
                                     size_t(columns / kBlock) * kBlockBytes, row_bytes};
    prefetch.first_window(min(kGemvColumnsPerWarp, n - j0));
    __syncthreads();  // every warp is done with the previous tile
    const int groups = m * (columns / 8);
    for (int g0 = 0; g0 < groups; g0 += kGemvWarps * kWarpSize)
      quant_dot::quantize_group<kBlock / 8>(x, k, t0, columns, g0 + int(threadIdx.x), groups, xq);
    __syncthreads();
    for (int c = lane; c < columns / 32; c += kWarpSize) {
#pragma unroll
      for (int col = 0; col < kGemvColumnsPerWarp; col++) {
        if (j0 + col >= n) break;
        prefetch.ahead_of(col, c);
        const quant_dot::WeightChunk chunk = quant_dot::weight_chunk<F>(w + size_t(j0 + col) * row_bytes, t0 / 32 + c);
#pragma unroll
        for (int i = 0; i < kMaxGemvRows; i++) {
          if (i >= m) break;
          acc[col][i] += quant_dot::chunk_dot(chunk, xq, i, c);
        }
      }
    }
  }
#pragma unroll
  for (int col = 0; col < kGemvColumnsPerWarp; col++) {
    const int j = j0 + col;
#pragma unroll
    for (int i = 0; i < kMaxGemvRows; i++) {
      if (i >= m) break;
      const float sum = warp_sum(acc[col][i]);
      if (lane == 0 && j < n) out[size_t(i) * n + j] = from_float<TX>(sum + (bias ? to_float(bias[j]) : 0.0f));
    }
  }
}

constexpr int kTile = 64, kTileK = 32, kThreadsPerSide = 16;  // 256 threads, 4 x 4 outputs each

template <class TX>
__global__ void quant_gemm_kernel(const TX* x, const uint8_t* w, const TX* bias, TX* out, int m, int n, int k,
                                  vt_dtype type) {
  __shared__ float xs[kTile][kTileK + 1];
  __shared__ float ws[kTile][kTileK + 1];
  const int tx = threadIdx.x % kThreadsPerSide, ty = threadIdx.x / kThreadsPerSide;
  const int i0 = blockIdx.y * kTile, j0 = blockIdx.x * kTile;
  const size_t row_bytes = size_t(k / quant::block_elements(type)) * quant::block_bytes(type);
  float acc[4][4] = {};
  // Each thread stages 8 consecutive values of one row of x and of w per step.
  static_assert(kTile * kTileK == 8 * kThreadsPerSide * kThreadsPerSide, "one 8-value chunk per thread");
  const int stage_row = threadIdx.x / (kTileK / 8), stage_col = (threadIdx.x % (kTileK / 8)) * 8;
  for (int q0 = 0; q0 < k; q0 += kTileK) {
    float values[8] = {};
    if (j0 + stage_row < n)
      quant::dequantize_eight(type, w + size_t(j0 + stage_row) * row_bytes, q0 + stage_col, values);
#pragma unroll
    for (int e = 0; e < 8; e++) {
      ws[stage_row][stage_col + e] = values[e];
      xs[stage_row][stage_col + e] =
          i0 + stage_row < m ? to_float(x[size_t(i0 + stage_row) * k + q0 + stage_col + e]) : 0.0f;
    }
    __syncthreads();
#pragma unroll 8
    for (int c = 0; c < kTileK; c++) {
      float a[4], b[4];
#pragma unroll
      for (int u = 0; u < 4; u++) {
        a[u] = xs[ty + kThreadsPerSide * u][c];
        b[u] = ws[tx + kThreadsPerSide * u][c];
      }
#pragma unroll
      for (int u = 0; u < 4; u++)
#pragma unroll
        for (int v = 0; v < 4; v++) acc[u][v] += a[u] * b[v];
    }
    __syncthreads();
  }
#pragma unroll
  for (int u = 0; u < 4; u++) {
    const int i = i0 + ty + kThreadsPerSide * u;
    if (i >= m) continue;
#pragma unroll
    for (int v = 0; v < 4; v++) {
      const int j = j0 + tx + kThreadsPerSide * v;
      if (j < n) out[size_t(i) * n + j] = from_float<TX>(acc[u][v] + (bias ? to_float(bias[j]) : 0.0f));
    }
  }
}

// One thread per block of the quantized side.
template <class T>
__global__ void convert_blocks_kernel(void* dst, const void* src, size_t blocks, vt_dtype format, bool dequantize) {
  const size_t b = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= blocks) return;
  const int elements = quant::block_elements(format), bytes = quant::block_bytes(format);
  float values[256];
  if (dequantize) {
    quant::dequantize_block(format, static_cast<const uint8_t*>(src) + b * bytes, values);
    for (int e = 0; e < elements; e++) static_cast<T*>(dst)[b * elements + e] = from_float<T>(values[e]);
  } else {
    for (int e = 0; e < elements; e++) values[e] = to_float(static_cast<const T*>(src)[b * elements + e]);
    quant::quantize_block(format, values, static_cast<uint8_t*>(dst) + b * bytes);
  }
}

}  // namespace

vt_status check_quantized_weights(const char* op, const void* w, vt_dtype weight_dtype) {
  const size_t alignment = quant_dot::weight_alignment(weight_dtype);
  VT_REQUIRE(is_aligned(w, alignment), op,
             std::string("w must start ") + std::to_string(alignment) + "-byte aligned for " +
                 vt::dtype_name(weight_dtype) + " weights");
  return vt::ok();
}

vt_status convert_quantized(vt_context* ctx, void* dst, vt_dtype dst_dtype, const void* src, vt_dtype src_dtype,
                            size_t count) {
  const bool dequantize = quant::is_quantized(src_dtype);
  const vt_dtype format = dequantize ? src_dtype : dst_dtype, plain = dequantize ? dst_dtype : src_dtype;
  const size_t blocks = count / size_t(quant::block_elements(format));
  constexpr int threads = 128;
  with_dtype(plain, [&](auto tag) {
    using T = typename decltype(tag)::type;
    auto kernel = &convert_blocks_kernel<T>;
    VT_LAUNCH(kernel, unsigned(ceil_div(blocks, threads)), threads, 0, ctx->stream, dst, src, blocks, format,
              dequantize);
  });
  return launch_status("vt_convert");
}

vt_status quantized_matmul(vt_context* ctx, const void* x, const void* w, const void* bias, void* out, int32_t m,
                           int32_t n, int32_t k, vt_dtype act_dtype, vt_dtype weight_dtype) {
  VT_TRY(check_quantized_weights("vt_matmul", w, weight_dtype));
  const auto* wq = static_cast<const uint8_t*>(w);
  with_dtype(act_dtype, [&](auto tag) {
    using TX = typename decltype(tag)::type;
    const auto* xt = static_cast<const TX*>(x);
    const auto* bt = static_cast<const TX*>(bias);
    auto* ot = static_cast<TX*>(out);
    if (m <= kMaxGemvRows) {
      quant_dot::with_format(weight_dtype, [&](auto format) {
        auto kernel = &quant_gemv_kernel<TX, decltype(format)::value>;
        VT_LAUNCH(kernel, unsigned(ceil_div(n, kGemvColumns)), kGemvWarps * kWarpSize, 0, ctx->stream, xt, wq, bt, ot,
                  m, n, k, gemv_tile_values(m, k));
      });
    } else if constexpr (!std::is_same_v<TX, float>) {
      const size_t row_bytes = size_t(k / quant::block_elements(weight_dtype)) * quant::block_bytes(weight_dtype);
      // k is whole blocks of 32 or 256 values, so only x's alignment decides the loads.
      matmul::launch_gemm_tensor_core(ctx->stream, xt, matmul::QuantizedWeights<TX>{wq, weight_dtype, row_bytes}, bt,
                                      ot, m, n, k, is_aligned(xt, 16));
    } else {
      auto kernel = &quant_gemm_kernel<TX>;
      const dim3 grid(unsigned(ceil_div(n, kTile)), unsigned(ceil_div(m, kTile)));
      VT_LAUNCH(kernel, grid, kThreadsPerSide * kThreadsPerSide, 0, ctx->stream, xt, wq, bt, ot, m, n, k, weight_dtype);
    }
  });
  return launch_status("vt_matmul");
}

}  // namespace vt::gpu
