// vt_matmul for a few rows of x (decode: one row per sequence of the batch, m <= kGemvMaxRows).
//
// Bound: HBM bandwidth on w. Each weight is used m <= 8 times (8 FMAs at most), so the kernel's
// job is to stream w exactly once with wide, coalesced loads and enough bytes in flight, and to
// keep the instructions per weight byte low enough that the SM's issue rate is not the limit:
// at m = 8 with bf16, a 16-byte weight load costs ~90 instructions (64 FMAs, 8 conversions and
// a quarter of the x loads and conversions it shares with 3 other rows), which at an H100's
// 3.35 TB/s is about half of its issue rate (so it stays memory-bound up to ~12 rows; it is
// used up to 8, where the tiled kernels' 64-row tiles take over).
//
// Tiling: a block of 256 threads owns kGemvRows = 4 consecutive rows of w (output columns) and
// all m rows of x. Its threads split k: thread t reads 16-byte chunks t, t + 256, ... of each of
// the 4 rows (the warp's 32 loads of one row are 512 contiguous bytes), widens them to f32 once,
// and multiplies them with the same chunk of every row of x, which all blocks share through
// L1/L2 (x is at most 8 rows: tiny next to w). So one x load serves 4 weight rows and one
// weight load serves m rows of x. 4 rows x 16 bytes per thread in flight (more once the
// compiler unrolls the loop), with at least 3 resident blocks per SM, is ~48 KiB per SM: enough
// for HBM's latency-bandwidth product; 4 rows per block keeps the grid large even for small n
// (n = 1024 gives 256 blocks, about two per SM on an H100).
//
// The M * 4 partial sums of each thread are then summed over the block: a reduce-scatter inside
// each warp (M * 4 - 1 + log2(32 / (M * 4)) shuffles instead of 5 per value) and a pass over
// shared memory across the 8 warps. The bias is added and the result rounded to the output
// dtype once, in f32.
//
// Requirements (checked on the host by gemv_fits): x and w 16-byte aligned and k a multiple of
// the elements in 16 bytes of w, so every row starts aligned and no chunk straddles the end of
// a row. Other shapes take the tiled kernels, which handle any k.
#pragma once

#include "common.cuh"
#include "vec.cuh"

namespace vt::gpu::matmul {

constexpr int kGemvThreads = 256;
constexpr int kGemvRows = 4;     // rows of w (output columns) per block
constexpr int kGemvMaxRows = 8;  // rows of x this kernel takes (more: the tiled kernels)

// Sums each of the V values of v over the 32 lanes of a warp, V a power of two <= 32. On return,
// every lane holds the total of value lane / (32 / V): each halving step trades half of a
// lane's values with the lane `offset` away (one shuffle per traded value), then the lanes that
// share a value finish with a plain butterfly.
template <int V>
__device__ __forceinline__ float warp_reduce_scatter(float (&v)[V]) {
  static_assert(V >= 1 && V <= kWarpSize && (V & (V - 1)) == 0, "V must be a power of two <= 32");
  const int lane = threadIdx.x % kWarpSize;
#pragma unroll
  for (int step = 0; (V >> step) > 1; step++) {
    const int half = V >> (step + 1);
    const int offset = (kWarpSize / 2) >> step;
    const bool upper = (lane & offset) != 0;
#pragma unroll
    for (int i = 0; i < half; i++) {
      const float keep = upper ? v[i + half] : v[i];
      const float send = upper ? v[i] : v[i + half];
      v[i] = keep + __shfl_xor_sync(0xffffffffu, send, offset);
    }
  }
  float total = v[0];
#pragma unroll
  for (int offset = kWarpSize / V / 2; offset > 0; offset /= 2) total += __shfl_xor_sync(0xffffffffu, total, offset);
  return total;
}

// out[i, j] = x[i, :] . w[j, :] + bias[j] for i < m <= M, j in this block's kGemvRows rows.
// TX: activations (x, out); TW: weights (w, bias). Launch: grid ceil(n / kGemvRows), 256 threads.
// At least 3 resident blocks (24 warps) per SM: registers are capped at 85 so enough loads stay
// in flight (ptxas' own choice under a plain bound of 256 spilled, and without one took 96).
template <class TX, class TW, int M>
__global__ void __launch_bounds__(kGemvThreads, 3)
    gemv_kernel(const TX* __restrict__ x, const TW* __restrict__ w, const TW* __restrict__ bias, TX* __restrict__ out,
                int m, int n, int k) {
  constexpr int R = kGemvRows;
  constexpr int V = M * R;
  constexpr int kVec = 16 / int(sizeof(TW));  // weights per 16-byte load
  __shared__ float partial[kGemvThreads / kWarpSize][V];

  const int row0 = blockIdx.x * R;
  const int chunks = k / kVec;
  // Rows past n (last block only) read row n - 1 again; their sums are never stored.
  const TW* wrow[R];
#pragma unroll
  for (int r = 0; r < R; r++) wrow[r] = w + size_t(row0 + r < n ? row0 + r : n - 1) * size_t(k);

  float acc[V];  // acc[i * R + r]: row i of x against row r of w
#pragma unroll
  for (int v = 0; v < V; v++) acc[v] = 0.0f;

  for (int c = threadIdx.x; c < chunks; c += kGemvThreads) {
    const size_t at = size_t(c) * kVec;
    float wv[R][kVec];
#pragma unroll
    for (int r = 0; r < R; r++) load_floats<kVec>(wrow[r] + at, wv[r]);
#pragma unroll
    for (int i = 0; i < M; i++) {
      if (i < m) {
        float xv[kVec];
        load_floats<kVec>(x + size_t(i) * size_t(k) + at, xv);
#pragma unroll
        for (int r = 0; r < R; r++)
#pragma unroll
          for (int e = 0; e < kVec; e++) acc[i * R + r] += xv[e] * wv[r][e];
      }
    }
  }

  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  constexpr int kSpan = kWarpSize / V;  // lanes that end up holding the same value
  const float total = warp_reduce_scatter<V>(acc);
  if (lane % kSpan == 0) partial[warp][lane / kSpan] = total;
  __syncthreads();
  if (int(threadIdx.x) < V) {
    const int i = threadIdx.x / R, col = row0 + int(threadIdx.x) % R;
    if (i < m && col < n) {
      float sum = 0.0f;
#pragma unroll
      for (int p = 0; p < kGemvThreads / kWarpSize; p++) sum += partial[p][threadIdx.x];
      if (bias) sum += to_float(bias[col]);
      out[size_t(i) * size_t(n) + col] = from_float<TX>(sum);
    }
  }
}

// Whether gemv_kernel can take this problem (see the requirements above).
template <class TX, class TW>
inline bool gemv_fits(const void* x, const void* w, int m, int k) {
  return m <= kGemvMaxRows && k % (16 / int(sizeof(TW))) == 0 && is_aligned(x, 16) && is_aligned(w, 16);
}

template <class TX, class TW, int M>
inline void launch_gemv_rows(cudaStream_t stream, const TX* x, const TW* w, const TW* bias, TX* out, int m, int n,
                             int k) {
  auto kernel = &gemv_kernel<TX, TW, M>;
  VT_LAUNCH(kernel, ceil_div(size_t(n), kGemvRows), kGemvThreads, 0, stream, x, w, bias, out, m, n, k);
}

// The kernel is instantiated for m rounded up to a power of two, so m = 1 (the common decode
// batch of one) carries no unused accumulators.
template <class TX, class TW>
inline void launch_gemv(cudaStream_t stream, const TX* x, const TW* w, const TW* bias, TX* out, int m, int n, int k) {
  if (m == 1)
    launch_gemv_rows<TX, TW, 1>(stream, x, w, bias, out, m, n, k);
  else if (m == 2)
    launch_gemv_rows<TX, TW, 2>(stream, x, w, bias, out, m, n, k);
  else if (m <= 4)
    launch_gemv_rows<TX, TW, 4>(stream, x, w, bias, out, m, n, k);
  else
    launch_gemv_rows<TX, TW, 8>(stream, x, w, bias, out, m, n, k);
}

}  // namespace vt::gpu::matmul
