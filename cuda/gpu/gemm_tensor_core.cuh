// vt_matmul for 16-bit activations and weights (f16 or bf16, the same) beyond the few rows
// gemv.cuh takes, when cuBLAS is absent: a tiled GEMM on the tensor cores through nvcuda::wmma
// (16 x 16 x 16 fragments, 16-bit inputs, f32 accumulators). Quantized weights (quant.cu) use
// the same kernel with w's tiles dequantized to the activations' dtype as they are staged, and
// the experts of a mixture (moe_matmul.cu) run its tile (gemm_tile) over the rows routed to
// one expert; tile_operands.cuh has the operands.
//
// Bound: tensor-core throughput for large m (prefill), weight bandwidth for m up to a few dozen.
// The tensor cores are fed from shared memory, so the tiles are sized for the ratio of shared
// loads to MMAs: with 128 x 128 block tiles each warp owns a 64 x 32 tile (4 x 2 fragments) and
// per 16-deep step loads 6 fragments for 8 MMAs; per 32-deep slice a block reads 16 KiB from
// global memory for 2 x 128 x 128 x 32 FLOPs (64 FLOPs per byte: compute-bound on an H100 at
// any m beyond a few hundred). wmma compiles to mma.sync, not Hopper's wgmma, and without
// cp.async (inline PTX is not allowed here) the staging goes through registers, so expect
// roughly half of mma.sync's peak on an H100 (60-70% on an A100); cuBLAS is used when present.
//
// Tiling: 256 threads = 8 warps as 2 (m) x 4 (n). Two tile shapes, picked by m:
//   m > 64:  128 x 128 block tiles (prefill);
//   m <= 64: 64 x 64 (warp tiles 32 x 16) so that skinny batches still spread w over twice as
//            many blocks per column of the output (the weight stream is the cost there).
// k advances in 32-wide slices, double-buffered: the next slice is read from global memory into
// registers (two 16-byte loads per thread and matrix for 128-row tiles) before the MMAs on the
// current one, and stored into the other shared buffer after them, so global latency overlaps
// the tensor cores with one barrier per slice. Shared rows are padded to 40 elements (80 bytes):
// 16-byte aligned as wmma requires, and the 8 rows a fragment load reads at once fall on
// distinct banks.
//
// Edges: rows past m or n and k past k are zero-filled when staged, so partial tiles on every
// edge (and any k, including k < 16) are exact; only in-range outputs are stored. With k a
// multiple of 8 and x, w 16-byte aligned every row segment is read with 16-byte loads
// (kVectorLoads); otherwise element by element. Epilogue: each warp stages one accumulator
// fragment at a time through shared memory (the tile buffers, free by then), adds the bias in
// f32, rounds once to T and writes 8 consecutive outputs per lane (one 16-byte store when n is
// a multiple of 8).
#pragma once

#include "common.cuh"
#include "tile_operands.cuh"
#include "vec.cuh"

namespace vt::gpu::matmul {

constexpr int kTcStride = kTcSlice + 8;  // padded shared row, in elements
constexpr int kTcWarpsM = 2, kTcWarpsN = 4;
constexpr int kTcSmallTileMaxRows = 64;  // m up to this uses 64 x 64 tiles

template <class T, int ROWS>
__device__ __forceinline__ void stage_tile(T* tile, const TileRegs<T, ROWS>& regs) {
#pragma unroll
  for (int i = 0; i < TileRegs<T, ROWS>::kChunks; i++) {
    T* to = tile + TileRegs<T, ROWS>::row_of(i) * kTcStride + TileRegs<T, ROWS>::column_of(i);
    VT_CHECK_ALIGNED(to, 16);
    *reinterpret_cast<Pack<T, 8>*>(to) = regs.chunk[i];
  }
}

// One BM x BN tile of out = x · w^T (+ bias), the columns from col0: x, w and out are operands of
// tile_operands.cuh (x and out already at the tile's rows; w's rows are the output columns).
// Every thread of the block must call it (it synchronizes the block).
template <class T, int BM, int BN, bool kVectorLoads, class X, class W, class Out>
__device__ __forceinline__ void gemm_tile(const X& x, const W& w, const T* __restrict__ bias, const Out& out, int col0,
                                          int n, int k, bool vector_stores) {
  namespace wmma = nvcuda::wmma;
  constexpr int kWarpRows = BM / kTcWarpsM, kWarpCols = BN / kTcWarpsN;
  constexpr int FM = kWarpRows / 16, FN = kWarpCols / 16;
  static_assert(FM >= 1 && FN >= 1 && kWarpRows % 16 == 0 && kWarpCols % 16 == 0, "warp tile of whole fragments");
  constexpr int kStageElems = (BM + BN) * kTcStride;  // x tile then w tile
  constexpr size_t kTileBytes = 2 * kStageElems * sizeof(T);
  constexpr size_t kScratchBytes = (kTcThreads / kWarpSize) * 16 * 16 * sizeof(float);
  __shared__ __align__(128) unsigned char smem[kTileBytes > kScratchBytes ? kTileBytes : kScratchBytes];
  T* tiles = reinterpret_cast<T*>(smem);

  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  const int warp_m = warp / kTcWarpsN, warp_n = warp % kTcWarpsN;

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[FM][FN];
#pragma unroll
  for (int i = 0; i < FM; i++)
#pragma unroll
    for (int j = 0; j < FN; j++) wmma::fill_fragment(acc[i][j], 0.0f);

  TileRegs<T, BM> x_regs;
  TileRegs<T, BN> w_regs;
  x.template fetch<kVectorLoads>(0, k, x_regs);
  w.template fetch<kVectorLoads>(n, col0, 0, k, w_regs);
  stage_tile(tiles, x_regs);
  stage_tile(tiles + BM * kTcStride, w_regs);
  __syncthreads();

  const int slices = (k + kTcSlice - 1) / kTcSlice;
  for (int s = 0; s < slices; s++) {
    const bool more = s + 1 < slices;
    if (more) {
      x.template fetch<kVectorLoads>((s + 1) * kTcSlice, k, x_regs);
      w.template fetch<kVectorLoads>(n, col0, (s + 1) * kTcSlice, k, w_regs);
    }
    const T* xs = tiles + (s % 2) * kStageElems;
    const T* ws = xs + BM * kTcStride;
#pragma unroll
    for (int kk = 0; kk < kTcSlice; kk += 16) {
      // w[n, k] row-major is w^T (k x n) column-major: the B operand as stored. The FN B
      // fragments stay loaded while the A fragments pass one at a time, which keeps the
      // registers (accumulators + prefetched slice + fragments) within two blocks per SM.
      wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> b[FN];
#pragma unroll
      for (int j = 0; j < FN; j++)
        wmma::load_matrix_sync(b[j], ws + (warp_n * kWarpCols + j * 16) * kTcStride + kk, kTcStride);
#pragma unroll
      for (int i = 0; i < FM; i++) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
        wmma::load_matrix_sync(a, xs + (warp_m * kWarpRows + i * 16) * kTcStride + kk, kTcStride);
#pragma unroll
        for (int j = 0; j < FN; j++) wmma::mma_sync(acc[i][j], a, b[j], acc[i][j]);
      }
    }
    if (more) {
      // The other buffer was last read in step s - 1, which every warp finished before the
      // barrier that ended it.
      T* next = tiles + ((s + 1) % 2) * kStageElems;
      stage_tile(next, x_regs);
      stage_tile(next + BM * kTcStride, w_regs);
    }
    __syncthreads();
  }

  // The loop ended with a barrier: the tile buffers are free for the per-warp scratch.
  float* scratch = reinterpret_cast<float*>(smem) + warp * 16 * 16;
  const int frag_row = lane / 2, frag_col = (lane % 2) * 8;  // this lane's 8 outputs of a fragment
#pragma unroll
  for (int i = 0; i < FM; i++) {
#pragma unroll
    for (int j = 0; j < FN; j++) {
      wmma::store_matrix_sync(scratch, acc[i][j], 16, wmma::mem_row_major);
      __syncwarp();
      T* o = out.row(warp_m * kWarpRows + i * 16 + frag_row);
      const int c0 = col0 + warp_n * kWarpCols + j * 16 + frag_col;
      float v[8];
#pragma unroll
      for (int e = 0; e < 8; e++) {
        v[e] = scratch[frag_row * 16 + frag_col + e];
        if (bias && c0 + e < n) v[e] += to_float(bias[c0 + e]);
      }
      if (o != nullptr) {
        o += c0;
        if (vector_stores && c0 + 8 <= n) {
          store_floats<8>(o, v);
        } else {
#pragma unroll
          for (int e = 0; e < 8; e++)
            if (c0 + e < n) o[e] = from_float<T>(v[e]);
        }
      }
      __syncwarp();  // the scratch is rewritten by the next fragment
    }
  }
}

// Launch: grid (ceil(n / BN), ceil(m / BM)), 256 threads. T: __half or __nv_bfloat16. W: where
// the w tiles come from (HalfWeights, or QuantizedWeights, dequantized as staged).
// Two resident blocks per SM (<= 128 registers: 64 of them accumulators for 128 x 128 tiles;
// 2 x 40 KiB of shared memory), so one block's MMAs overlap the other's barrier and staging.
// The element-wise staging (k % 8 != 0, rare) holds too many addresses for that and would spill
// heavily: it runs one block per SM.
template <class T, class W, int BM, int BN, bool kVectorLoads>
__global__ void __launch_bounds__(kTcThreads, kVectorLoads ? 2 : 1)
    gemm_tensor_core_kernel(const T* __restrict__ x, const W w, const T* __restrict__ bias, T* __restrict__ out, int m,
                            int n, int k, bool vector_stores) {
  const int row0 = blockIdx.y * BM;
  gemm_tile<T, BM, BN, kVectorLoads>(DenseRows<T>{x, m, row0}, w, bias, DenseOutput<T>{out, m, row0, n},
                                     blockIdx.x * BN, n, k, vector_stores);
}

// vector_loads: k % 8 == 0 and x (and w, when W reads it with vector loads) 16-byte aligned.
template <class T, class W, int BM, int BN>
inline void launch_gemm_tensor_core_tiles(cudaStream_t stream, const T* x, const W& w, const T* bias, T* out, int m,
                                          int n, int k, bool vector_loads) {
  const bool vector_stores = n % 8 == 0 && is_aligned(out, 16);
  const dim3 grid(ceil_div(size_t(n), BN), ceil_div(size_t(m), BM));
  if (vector_loads) {
    auto kernel = &gemm_tensor_core_kernel<T, W, BM, BN, true>;
    VT_LAUNCH(kernel, grid, kTcThreads, 0, stream, x, w, bias, out, m, n, k, vector_stores);
  } else {
    auto kernel = &gemm_tensor_core_kernel<T, W, BM, BN, false>;
    VT_LAUNCH(kernel, grid, kTcThreads, 0, stream, x, w, bias, out, m, n, k, vector_stores);
  }
}

template <class T, class W>
inline void launch_gemm_tensor_core(cudaStream_t stream, const T* x, const W& w, const T* bias, T* out, int m, int n,
                                    int k, bool vector_loads) {
  if (m <= kTcSmallTileMaxRows)
    launch_gemm_tensor_core_tiles<T, W, 64, 64>(stream, x, w, bias, out, m, n, k, vector_loads);
  else
    launch_gemm_tensor_core_tiles<T, W, 128, 128>(stream, x, w, bias, out, m, n, k, vector_loads);
}

template <class T>
inline void launch_gemm_tensor_core(cudaStream_t stream, const T* x, const T* w, const T* bias, T* out, int m, int n,
                                    int k) {
  const bool vector_loads = k % 8 == 0 && is_aligned(x, 16) && is_aligned(w, 16);
  launch_gemm_tensor_core(stream, x, HalfWeights<T>{w}, bias, out, m, n, k, vector_loads);
}

}  // namespace vt::gpu::matmul
