// The packed (compute-bound) matmul path's blocking, shared by its two element types: f32 panels
// with f32 FMAs (matmul.cpp) and bf16 pair panels with AVX512-BF16 dot products
// (matmul_bf16_pairs.cpp). AVX-512 only.
//
// Per block of <= kMaxKc k-values and kPackedBlockBytes worth of columns, a thread packs w
// transposed into panels of kNr columns; a kMr x kNr micro-kernel (24 zmm accumulators)
// broadcasts x from its rows (a kMr x kc slice, in L1) and streams the panels from L2. Packing
// costs O(n k), amortised over the m rows.
#pragma once

#if defined(__AVX512F__)
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "matmul_problem.h"
#include "simd.h"  // also silences GCC 12's false warnings on the AVX-512 intrinsics

namespace vt::cpu::packed {

constexpr int kMr = 8;                            // rows of x per micro-tile
constexpr int kNr = 48;                           // columns per packed panel (3 zmm)
constexpr int kMaxKc = 512;                       // k per block: an 8 x 512 slice of f32 x is 16 KiB of L1
constexpr size_t kPackedBlockBytes = 512 * 1024;  // packed w per block, in L2

// Transposes 16 rows of 16 32-bit values in place (r[i][j] -> r[j][i]).
inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  __m512 u[16];
  for (int g = 0; g < 4; g++) {
    __m512d a = _mm512_castps_pd(t[4 * g]), b = _mm512_castps_pd(t[4 * g + 1]);
    __m512d c = _mm512_castps_pd(t[4 * g + 2]), d = _mm512_castps_pd(t[4 * g + 3]);
    u[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  // u[4g + c] holds, in 128-bit lane L, column 4L + c of rows 4g..4g+3.
  for (int c = 0; c < 4; c++) {
    __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44);
    __m512 v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xee);
    __m512 v2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44);
    __m512 v3 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xee);
    r[c] = _mm512_shuffle_f32x4(v0, v2, 0x88);
    r[4 + c] = _mm512_shuffle_f32x4(v0, v2, 0xdd);
    r[8 + c] = _mm512_shuffle_f32x4(v1, v3, 0x88);
    r[12 + c] = _mm512_shuffle_f32x4(v1, v3, 0xdd);
  }
}

// Fetches the tile of out that a micro-kernel adds to into L2, so the miss hides behind its k loop.
template <int R, int V>
inline void prefetch_tile(const float* out, size_t ldo) {
  for (int i = 0; i < R; i++)
    for (int v = 0; v < V; v++) _mm_prefetch(reinterpret_cast<const char*>(out + i * ldo + 16 * v), _MM_HINT_T1);
}

// out[R rows, 16*V columns (the first `cols` of them valid)] = acc (+ bias) on the first k block,
// += acc on later ones.
template <int R, int V>
inline void store_tile(const __m512 (&acc)[R][V], float* out, size_t ldo, int cols, const float* bias, bool first) {
  for (int v = 0; v < V; v++) {
    const int valid = std::min(16, cols - 16 * v);
    const __mmask16 mask = valid >= 16 ? __mmask16(0xffff) : __mmask16((1u << valid) - 1);
    const __m512 add =
        first ? (bias ? _mm512_maskz_loadu_ps(mask, bias + 16 * v) : _mm512_setzero_ps()) : _mm512_setzero_ps();
    for (int i = 0; i < R; i++) {
      float* o = out + i * ldo + 16 * v;
      const __m512 base = first ? add : _mm512_maskz_loadu_ps(mask, o);
      _mm512_mask_storeu_ps(o, mask, _mm512_add_ps(base, acc[i][v]));
    }
  }
}

// Packs w[j0 + j, kb + q] for j < cols, q < kc into panels of kNr columns: panel P holds
// element (r, j) (the r-th group of Panels::kKPerRow k-values of column j) at
// P * rows * kNr + r * width + (j - P * kNr), rows = kc / kKPerRow rounded up, width = the
// panel's columns rounded up to 16. Each 16 x 16 transpose turns 16 rows of w (16 elements
// each, as Panels::weight_segment reads them) into 16 vectors of one element of 16 columns.
// Columns past `cols`, and k-values past kc, are zero so the micro-kernel runs whole vectors.
template <typename Panels>
void pack_panels(const MatmulProblem& p, int j0, int cols, int kb, int kc, float* out) {
  constexpr int per = Panels::kKPerRow, step = 16 * per;
  const int rows_per_panel = (kc + per - 1) / per;
  const char* w = static_cast<const char*>(p.w);
  const size_t row_bytes = size_t(p.k) * Panels::kWeightBytes;
  for (int jv = 0; jv < cols; jv += 16) {
    // As in the dot path: fetch the same k-values of the next 16 rows of w (into L2) while these
    // are read, so the short row segments never wait on DRAM.
    const int next_row = std::min(j0 + jv + 16, p.n);
    const int next_rows = std::min(16, p.n - next_row);
    const int panel = jv / kNr;
    const int panel_cols = std::min(kNr, cols - panel * kNr);
    const int width = (panel_cols + 15) / 16 * 16;
    float* dst = out + size_t(panel) * rows_per_panel * kNr + (jv - panel * kNr);
    const int rows = std::min(16, cols - jv);
    for (int q = 0; q < kc; q += step) {
      const int count = std::min(step, kc - q);
      for (int j = 0; j < next_rows; j++)
        __builtin_prefetch(w + (size_t(next_row) + j) * row_bytes + size_t(kb + q) * Panels::kWeightBytes, 0, 2);
      __m512 r[16];
      for (int j = 0; j < 16; j++)
        r[j] = j < rows ? Panels::weight_segment(p, size_t(j0 + jv + j) * p.k + kb + q, count) : _mm512_setzero_ps();
      transpose16(r);
      for (int t = 0; t < (count + per - 1) / per; t++) _mm512_storeu_ps(dst + size_t(q / per + t) * width, r[t]);
    }
  }
}

// out[R rows, 16*V columns] (+)= x rows · a packed panel: per packed row, V panel vectors and,
// for each row of x, a broadcast of its kKPerRow k-values multiplied into every column.
template <typename Panels, int R, int V>
void micro_kernel(const typename Panels::X* x, size_t ldx, const float* panel, int kc, float* out, size_t ldo, int cols,
                  const float* bias, bool first) {
  constexpr int per = Panels::kKPerRow;
  if (!first) prefetch_tile<R, V>(out, ldo);
  __m512 acc[R][V];
  for (int i = 0; i < R; i++)
    for (int v = 0; v < V; v++) acc[i][v] = _mm512_setzero_ps();
  const int rows = (kc + per - 1) / per;
  for (int r = 0; r < rows; r++) {
    __m512 b[V];
    for (int v = 0; v < V; v++) b[v] = _mm512_loadu_ps(panel + size_t(r) * 16 * V + 16 * v);
#pragma GCC unroll 8
    for (int i = 0; i < R; i++) {
      const __m512 a = Panels::broadcast_x(x + i * ldx + per * r);
      for (int v = 0; v < V; v++) acc[i][v] = Panels::multiply_add(a, b[v], acc[i][v]);
    }
  }
  store_tile<R, V>(acc, out, ldo, cols, bias, first);
}

// One packed block: k-values [kb, kb + kc) of columns [jc, jc + cols), packed in panels of
// panel_rows rows of 32-bit elements; x_rows is the thread's room for a row tile's x in Panels::X.
template <typename Panels>
struct Block {
  const MatmulProblem& p;
  const float* packed;
  typename Panels::X* x_rows;
  int panel_rows, kb, kc, jc, cols;
};

// Rows i..i+R of a block: panels inner, so the R x kc slice of x stays in L1 while the block
// streams from L2.
template <typename Panels, int R>
void row_tile(const Block<Panels>& b, int i) {
  const MatmulProblem& p = b.p;
  size_t ldx = 0;
  const typename Panels::X* x = Panels::x_rows(p, i, R, b.kb, b.kc, b.x_rows, ldx);
  const bool first = b.kb == 0;
  for (int pj = 0; pj < b.cols; pj += kNr) {
    const int panel_cols = std::min(kNr, b.cols - pj);
    const float* panel = b.packed + size_t(pj / kNr) * b.panel_rows * kNr;
    float* out = p.out + i * p.ldo + b.jc + pj;
    const float* bias = p.bias ? p.bias + b.jc + pj : nullptr;
    switch ((panel_cols + 15) / 16) {
      case 3:
        micro_kernel<Panels, R, 3>(x, ldx, panel, b.kc, out, p.ldo, panel_cols, bias, first);
        break;
      case 2:
        micro_kernel<Panels, R, 2>(x, ldx, panel, b.kc, out, p.ldo, panel_cols, bias, first);
        break;
      default:
        micro_kernel<Panels, R, 1>(x, ldx, panel, b.kc, out, p.ldo, panel_cols, bias, first);
        break;
    }
  }
}

// Columns [jb, je) of out, all rows, with Panels giving the element types and the operations:
//   Panels::X                     the element type x is multiplied in
//   Panels::kKPerRow              k-values per packed element (1, or 2 for pairs)
//   Panels::kWeightBytes          bytes per element of w
//   Panels::weight_segment(p, at, count)
//                                 16 packed elements of w from element `at` (count k-values, the
//                                 rest zero), as the 32-bit lanes of a vector
//   Panels::x_rows(p, i, rows, kb, kc, room, ldx)
//                                 rows i.. of x over [kb, kb + kc) in X, in `room` (kMr x
//                                 (kMaxKc + 1) elements) or in place; ldx gets their stride
//   Panels::broadcast_x(x)        kKPerRow k-values of x in every 32-bit lane
//   Panels::multiply_add(a, b, acc)
//                                 acc + the products of a packed element of x and of w, per lane
template <typename Panels>
void packed_columns(const MatmulProblem& p, int jb, int je) {
  constexpr int per = Panels::kKPerRow;
  // Per thread and kept between calls: a fresh 512 KiB buffer per call would cost page faults.
  // Packed elements are 32 bits (an f32, or a pair of bf16), held as floats.
  thread_local std::vector<float> packed;
  thread_local std::vector<typename Panels::X> x_rows(size_t(kMr) * (kMaxKc + 1));
  // Even k blocks (each pass over k re-reads and re-writes the tile of out), and as many
  // columns as fit the packed-block budget.
  const int k_blocks = (p.k + kMaxKc - 1) / kMaxKc;
  const int block_k = ((p.k + k_blocks - 1) / k_blocks + 15) / 16 * 16;
  const int rows_per_block = block_k / per;
  const int budget = int(kPackedBlockBytes / sizeof(float) / size_t(rows_per_block));
  const int block_cols = std::max(kNr, budget / kNr * kNr);
  packed.resize(size_t(rows_per_block) * block_cols);
  for (int kb = 0; kb < p.k; kb += block_k) {
    const int kc = std::min(block_k, p.k - kb);
    for (int jc = jb; jc < je; jc += block_cols) {
      const int cols = std::min(block_cols, je - jc);
      pack_panels<Panels>(p, jc, cols, kb, kc, packed.data());
      const Block<Panels> b{p, packed.data(), x_rows.data(), (kc + per - 1) / per, kb, kc, jc, cols};
      int i = 0;
      for (; i + kMr <= p.m; i += kMr) row_tile<Panels, kMr>(b, i);
      switch (p.m - i) {
        case 7:
          row_tile<Panels, 7>(b, i);
          break;
        case 6:
          row_tile<Panels, 6>(b, i);
          break;
        case 5:
          row_tile<Panels, 5>(b, i);
          break;
        case 4:
          row_tile<Panels, 4>(b, i);
          break;
        case 3:
          row_tile<Panels, 3>(b, i);
          break;
        case 2:
          row_tile<Panels, 2>(b, i);
          break;
        case 1:
          row_tile<Panels, 1>(b, i);
          break;
        default:
          break;
      }
    }
  }
}

}  // namespace vt::cpu::packed
#endif
