// vt_matmul with f32 activations (weights f32, f16 or bf16) beyond the few rows gemv.cuh takes:
// a classic shared-memory tiled SIMT GEMM on the FP32 FMA units.
//
// Bound: FP32 FMA throughput (tensor cores do not take f32 inputs without TF32 rounding, which
// the f32 contract of the op excludes). This path is what the f32 tests and f32 models use; the
// production path is 16-bit activations (gemm_tensor_core.cuh / cuBLAS).
//
// Tiling: a block of 256 threads computes a 64 x 64 tile of out, 4 x 4 outputs per thread held
// in registers, stepping over k in slices of 16. Per slice, every thread stages 4 elements of x
// and 4 of w into shared memory (transposed: k-major, so a thread's 4 rows or 4 columns are one
// float4), widening w to f32 there so the inner loop is pure f32. Global reads are coalesced
// (16 consecutive k of a row per half warp) and the next slice is read into registers while the
// current one is multiplied. The inner loop does 16 FMAs per two 16-byte shared loads (one of
// them a broadcast); with 64 x 64 tiles the shared traffic stays below the FMA time, for an
// expected 50-70% of the FP32 peak on large shapes. Edges: out-of-range rows, columns and k are
// zero-filled on load and not stored, so any m, n, k is correct.
#pragma once

#include "common.cuh"

namespace vt::gpu::matmul {

constexpr int kSimtThreads = 256;
constexpr int kSimtTile = 64;   // rows of x and of w per block
constexpr int kSimtSlice = 16;  // k per shared-memory step
constexpr int kSimtMicro = 4;   // outputs per thread along each of m and n
// Rows of x (and of w) each thread stages per slice.
constexpr int kSimtLoads = kSimtTile * kSimtSlice / kSimtThreads;

// Launch: grid (ceil(n / 64), ceil(m / 64)), 256 threads; 3 resident blocks per SM (<= 85
// registers, no spills) hide the global latency the register prefetch does not.
template <class TW>
__global__ void __launch_bounds__(kSimtThreads, 3)
    gemm_simt_kernel(const float* __restrict__ x, const TW* __restrict__ w, const TW* __restrict__ bias,
                     float* __restrict__ out, int m, int n, int k) {
  // +4 floats per row: keeps float4 alignment and spreads the transposed stores over the banks.
  __shared__ __align__(16) float xs[kSimtSlice][kSimtTile + 4];
  __shared__ __align__(16) float ws[kSimtSlice][kSimtTile + 4];

  const int tid = threadIdx.x;
  const int row0 = blockIdx.y * kSimtTile, col0 = blockIdx.x * kSimtTile;
  // Staging: thread tid reads k offset tid % 16 of rows tid / 16 + 16 e, e < 4.
  const int load_k = tid % kSimtSlice, load_row = tid / kSimtSlice;
  // Computing: rows ty * 4 .. + 4 and columns tx * 4 .. + 4 of the tile.
  const int tx = tid % (kSimtTile / kSimtMicro), ty = tid / (kSimtTile / kSimtMicro);

  float x_next[kSimtLoads], w_next[kSimtLoads];
  auto fetch = [&](int k0) {
    const int q = k0 + load_k;
#pragma unroll
    for (int e = 0; e < kSimtLoads; e++) {
      const int r = row0 + load_row + e * (kSimtThreads / kSimtSlice);
      const int c = col0 + load_row + e * (kSimtThreads / kSimtSlice);
      x_next[e] = r < m && q < k ? x[size_t(r) * size_t(k) + q] : 0.0f;
      w_next[e] = c < n && q < k ? to_float(w[size_t(c) * size_t(k) + q]) : 0.0f;
    }
  };

  float acc[kSimtMicro][kSimtMicro];
#pragma unroll
  for (int i = 0; i < kSimtMicro; i++)
#pragma unroll
    for (int j = 0; j < kSimtMicro; j++) acc[i][j] = 0.0f;

  fetch(0);
  for (int k0 = 0; k0 < k; k0 += kSimtSlice) {
#pragma unroll
    for (int e = 0; e < kSimtLoads; e++) {
      xs[load_k][load_row + e * (kSimtThreads / kSimtSlice)] = x_next[e];
      ws[load_k][load_row + e * (kSimtThreads / kSimtSlice)] = w_next[e];
    }
    __syncthreads();
    if (k0 + kSimtSlice < k) fetch(k0 + kSimtSlice);  // in flight during the FMAs below
#pragma unroll
    for (int kk = 0; kk < kSimtSlice; kk++) {
      VT_CHECK_ALIGNED(&xs[kk][ty * kSimtMicro], 16);
      VT_CHECK_ALIGNED(&ws[kk][tx * kSimtMicro], 16);
      const float4 a = *reinterpret_cast<const float4*>(&xs[kk][ty * kSimtMicro]);
      const float4 b = *reinterpret_cast<const float4*>(&ws[kk][tx * kSimtMicro]);
      const float av[kSimtMicro] = {a.x, a.y, a.z, a.w};
      const float bv[kSimtMicro] = {b.x, b.y, b.z, b.w};
#pragma unroll
      for (int i = 0; i < kSimtMicro; i++)
#pragma unroll
        for (int j = 0; j < kSimtMicro; j++) acc[i][j] += av[i] * bv[j];
    }
    __syncthreads();
  }

#pragma unroll
  for (int j = 0; j < kSimtMicro; j++) {
    const int c = col0 + tx * kSimtMicro + j;
    if (c < n) {
      const float b = bias ? to_float(bias[c]) : 0.0f;
#pragma unroll
      for (int i = 0; i < kSimtMicro; i++) {
        const int r = row0 + ty * kSimtMicro + i;
        if (r < m) out[size_t(r) * size_t(n) + c] = acc[i][j] + b;
      }
    }
  }
}

template <class TW>
inline void launch_gemm_simt(cudaStream_t stream, const float* x, const TW* w, const TW* bias, float* out, int m, int n,
                             int k) {
  auto kernel = &gemm_simt_kernel<TW>;
  const dim3 grid(ceil_div(size_t(n), kSimtTile), ceil_div(size_t(m), kSimtTile));
  VT_LAUNCH(kernel, grid, kSimtThreads, 0, stream, x, w, bias, out, m, n, k);
}

}  // namespace vt::gpu::matmul
