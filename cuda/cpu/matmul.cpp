// vt_matmul on the CPU: out[m, n] = x[m, k] · w[n, k]^T + bias[n], x and out in f32, w and
// bias in f32, f16 or bf16 (kept in their dtype, widened to f32 in registers), f32 accumulation.
//
// Both paths split the output columns evenly across the context's threads: a thread owns
// out[:, its columns] and reads only its rows of w, so there are no barriers and no shared writes.
//  - Dot path (decode, m < 32): memory-bound on streaming w once. A thread walks its rows of w
//    8 at a time and computes every row of x against them in register tiles of 2 x 8 dot
//    products (accumulated lane-wise along k, summed at the end), so each weight byte comes from
//    DRAM once (software-prefetched a tile ahead); k is blocked so x stays in L2 and the 8 rows
//    of w in L1 across the passes of x. Its bound is DRAM bandwidth in weight bytes per second;
//    from m ~ 8 (bf16) or 16 (f32) the FMAs take over.
//  - Packed path (prefill, m >= 32; AVX-512 only): compute-bound. Per block of <= 512 k-values
//    and 512 KiB worth of columns, a thread packs w transposed and widened to f32 into panels of
//    48 columns; an 8 x 48 micro-kernel (24 zmm accumulators) broadcasts x from its rows (an
//    8 x kc slice, in L1) and streams the panels from L2. Its bound is the f32 FMA peak (two
//    512-bit FMAs per cycle on Zen 5); packing costs O(n k), amortised over the m rows.
// Builds without AVX-512 use the dot path for every m, with AVX2+FMA or plain scalar code.
// Quantized w has kernels of its own (interleaved_dot.cpp), columns split by groups of 16 rows.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "checks.h"
#include "common.h"
#include "interleaved_quant.h"
#include "op.h"
#include "quantized_activations.h"
#include "simd.h"

// GCC 12 also flags (as -Wuninitialized) the undefined pass-through operand of the AVX-512
// extract intrinsics used by the reductions; a false positive, like the one simd.h silences.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace {

namespace simd = vt::simd;

template <vt_dtype D>
constexpr size_t sizeof_dtype = D == VT_F32 ? 4 : 2;

// W consecutive weights of dtype D from element i, widened to f32.
template <vt_dtype D>
inline simd::vec load_weights(const void* w, size_t i) {
  if constexpr (D == VT_F32)
    return simd::load(static_cast<const float*>(w) + i);
  else if constexpr (D == VT_F16)
    return simd::load_f16(static_cast<const uint16_t*>(w) + i);
  else
    return simd::load_bf16(static_cast<const uint16_t*>(w) + i);
}

// ---- dot path ----------------------------------------------------------------------------

// A register tile is kDotRows rows of x by kDotCols rows of w (output columns): 16
// accumulators plus 8 w vectors fit the 32 zmm registers; AVX2's 16 ymm take half the tile.
// Eight w rows in flight keep enough DRAM streams open for one core (measured: 2 x 8 beats
// 4 x 4, 3 x 6 and 1 x 8 from m = 1 to 16).
constexpr int kDotRows = 2;
#if defined(__AVX512F__)
constexpr int kDotCols = 8;
#else
constexpr int kDotCols = 4;
#endif
// k is blocked so that, within a block, the x rows stay in L2 (1 MiB per core on Zen 4/5) and
// a tile's kDotCols rows of w stay in L1 (48 KiB) while every pair of x rows passes over them.
constexpr size_t kDotXBlockBytes = 256 * 1024;
constexpr size_t kDotWTileBytes = 32 * 1024;

struct Problem {
  const float* x;
  const void* w;
  const float* bias;  // f32, or null
  float* out;
  int m, n, k;
  size_t ldo;            // elements between rows of out (n, or more when w is a slice of the columns)
  bool batch_invariant;  // every m on the dot path, whose rows do not depend on m
};

// out[i0.., j0..] (+)= x[i0 + i, kb:ke] · w[j0 + j, kb:ke] for i < R, j < C. The first k block
// stores (adding the bias), later ones accumulate.
template <vt_dtype D, int R, int C, bool Prefetch>
void dot_tile(const Problem& p, int i0, int j0, int kb, int ke, bool first) {
  using simd::W;
  const size_t k = size_t(p.k);
  simd::vec acc[R][C];
  for (int i = 0; i < R; i++)
    for (int j = 0; j < C; j++) acc[i][j] = simd::zero();
  const float* x = p.x + size_t(i0) * k;
  const size_t w0 = size_t(j0) * k;
  // Rows of w are short streams (a few KiB) that the hardware prefetcher would have to learn
  // anew for every tile; instead, while reading a column of this tile, fetch the same column of
  // the next tile's rows into L2 (this tile's again at the end of w, where there is no next
  // one). Measured on Zen 5: +20% weight bandwidth at m = 1, bf16 (L1 as the target: +10%).
  const char* next = static_cast<const char*>(p.w) + size_t(std::min(j0 + C, p.n - C)) * k * sizeof_dtype<D>;
  int q = kb;
  for (; q + W <= ke; q += W) {
    simd::vec wv[C];
#pragma GCC unroll 8
    for (int j = 0; j < C; j++) wv[j] = load_weights<D>(p.w, w0 + j * k + q);
    if constexpr (Prefetch)
      for (int j = 0; j < C; j++) __builtin_prefetch(next + (j * k + q) * sizeof_dtype<D>, 0, 2);
#pragma GCC unroll 8
    for (int i = 0; i < R; i++) {
      simd::vec xv = simd::load(x + i * k + q);
#pragma GCC unroll 8
      for (int j = 0; j < C; j++) acc[i][j] = simd::fma(xv, wv[j], acc[i][j]);
    }
  }
  if (q < ke) {
    // The k remainder goes through zero-padded f32 copies so the loads stay full-width.
    alignas(64) float xt[R][W] = {};
    alignas(64) float wt[C][W] = {};
    for (int t = q; t < ke; t++) {
      for (int i = 0; i < R; i++) xt[i][t - q] = x[i * k + t];
      for (int j = 0; j < C; j++) wt[j][t - q] = vt::load(p.w, D, w0 + j * k + t);
    }
    for (int i = 0; i < R; i++)
      for (int j = 0; j < C; j++) acc[i][j] = simd::fma(simd::load(xt[i]), simd::load(wt[j]), acc[i][j]);
  }
  for (int i = 0; i < R; i++) {
    float sums[C];
    if constexpr (C % 4 == 0) {
      for (int j = 0; j < C; j += 4)
        simd::reduce_add4(acc[i][j], acc[i][j + 1], acc[i][j + 2], acc[i][j + 3], sums + j);
    } else {
      for (int j = 0; j < C; j++) sums[j] = simd::reduce_add(acc[i][j]);
    }
    float* o = p.out + size_t(i0 + i) * p.ldo + j0;
    for (int j = 0; j < C; j++) o[j] = first ? sums[j] + (p.bias ? p.bias[j0 + j] : 0.0f) : o[j] + sums[j];
  }
}

template <vt_dtype D, int C>
void dot_rows(const Problem& p, int j0, int kb, int ke, bool first) {
  // Only the first pass over a tile prefetches the next one: later passes would fetch the same
  // lines again (measured: +5-10% from m = 4 up).
  constexpr bool prefetch = C == kDotCols;
  int i = 0;
  if (p.m >= kDotRows) {
    dot_tile<D, kDotRows, C, prefetch>(p, 0, j0, kb, ke, first);
    i = kDotRows;
  }
  for (; i + kDotRows <= p.m; i += kDotRows) dot_tile<D, kDotRows, C, false>(p, i, j0, kb, ke, first);
  if (i == 0)
    dot_tile<D, 1, C, prefetch>(p, 0, j0, kb, ke, first);
  else if (i < p.m)
    dot_tile<D, 1, C, false>(p, i, j0, kb, ke, first);
}

// Columns [jb, je) of out, all rows.
template <vt_dtype D>
void dot_columns(const Problem& p, int jb, int je) {
  // With a single pass of x rows over each tile, w never needs to stay in L1.
  const size_t x_fit = kDotXBlockBytes / (size_t(p.m) * 4);
  const size_t fit = p.m <= kDotRows ? x_fit : std::min(x_fit, kDotWTileBytes / (kDotCols * sizeof_dtype<D>));
  const int block = int(std::max<size_t>(256, fit) / 64 * 64);
  for (int kb = 0; kb < p.k; kb += block) {
    const int ke = std::min(p.k, kb + block);
    int j = jb;
    for (; j + kDotCols <= je; j += kDotCols) dot_rows<D, kDotCols>(p, j, kb, ke, kb == 0);
    for (; j < je; j++) dot_rows<D, 1>(p, j, kb, ke, kb == 0);
  }
}

// ---- packed path (AVX-512) ---------------------------------------------------------------

#if defined(__AVX512F__)
constexpr int kMr = 8;                             // rows of x per micro-tile
constexpr int kNr = 48;                            // columns per packed panel (3 zmm)
constexpr int kMaxKc = 512;                        // k per block: an 8 x 512 slice of x is 16 KiB of L1
constexpr size_t kPackedBlockFloats = 128 * 1024;  // 512 KiB of packed w per block, in L2

// Transposes 16 rows of 16 f32 in place (r[i][j] -> r[j][i]).
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

template <vt_dtype D>
inline __m512 load_weights_masked(const void* base, size_t i, int count) {
  const __mmask16 mask = __mmask16((1u << count) - 1);
  if constexpr (D == VT_F32) {
    return _mm512_maskz_loadu_ps(mask, static_cast<const float*>(base) + i);
  } else {
    __m256i h = _mm256_maskz_loadu_epi16(mask, static_cast<const uint16_t*>(base) + i);
    if constexpr (D == VT_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}

// Packs w[j0 + j, kb + q] for j < cols, q < kc as f32 panels of kNr columns: panel P holds
// element (q, j) at P * kc * kNr + q * width + (j - P * kNr), width = its columns rounded up to
// 16. Columns past `cols` are zero so the micro-kernel can run whole vectors.
template <vt_dtype D>
void pack_panels(const void* w, size_t k, int n, int j0, int cols, int kb, int kc, float* packed) {
  for (int jv = 0; jv < cols; jv += 16) {
    // As in the dot path: fetch the same columns of the next 16 rows (into L2) while these are
    // read, so the short row segments never wait on DRAM.
    const int next_row = std::min(j0 + jv + 16, n);
    const int next_rows = std::min(16, n - next_row);
    const int panel = jv / kNr;
    const int panel_cols = std::min(kNr, cols - panel * kNr);
    const int width = (panel_cols + 15) / 16 * 16;
    float* dst = packed + size_t(panel) * kc * kNr + (jv - panel * kNr);
    const int rows = std::min(16, cols - jv);
    for (int q = 0; q < kc; q += 16) {
      const int count = std::min(16, kc - q);
      for (int j = 0; j < next_rows; j++)
        __builtin_prefetch(static_cast<const char*>(w) + ((size_t(next_row) + j) * k + kb + q) * sizeof_dtype<D>, 0, 2);
      __m512 r[16];
      for (int j = 0; j < 16; j++) {
        if (j >= rows) {
          r[j] = _mm512_setzero_ps();
        } else {
          const size_t at = size_t(j0 + jv + j) * k + size_t(kb + q);
          r[j] = count == 16 ? load_weights<D>(w, at) : load_weights_masked<D>(w, at, count);
        }
      }
      transpose16(r);
      for (int t = 0; t < count; t++) _mm512_storeu_ps(dst + size_t(q + t) * width, r[t]);
    }
  }
}

// out[R rows, 16*V columns (the last `cols` of them valid)] (+)= x rows · packed panel.
template <int R, int V>
void micro_kernel(const float* x, size_t ldx, const float* panel, int kc, float* out, size_t ldo, int cols,
                  const float* bias, bool first) {
  // The tile of out is read back at the end; fetching it into L2 now hides the miss behind
  // the k loop.
  if (!first)
    for (int i = 0; i < R; i++)
      for (int v = 0; v < V; v++) _mm_prefetch(reinterpret_cast<const char*>(out + i * ldo + 16 * v), _MM_HINT_T1);
  __m512 acc[R][V];
  for (int i = 0; i < R; i++)
    for (int v = 0; v < V; v++) acc[i][v] = _mm512_setzero_ps();
  for (int q = 0; q < kc; q++) {
    __m512 b[V];
    for (int v = 0; v < V; v++) b[v] = _mm512_loadu_ps(panel + size_t(q) * 16 * V + 16 * v);
#pragma GCC unroll 8
    for (int i = 0; i < R; i++) {
      __m512 a = _mm512_set1_ps(x[i * ldx + q]);
      for (int v = 0; v < V; v++) acc[i][v] = _mm512_fmadd_ps(a, b[v], acc[i][v]);
    }
  }
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

// Rows i..i+R of out, columns jc..jc+cols from the packed block: panels inner, so the
// R x kc slice of x stays in L1 while the packed block streams from L2.
template <int R>
void micro_panels(const Problem& p, int i, int kb, int kc, const float* packed, int jc, int cols) {
  const size_t k = size_t(p.k), n = p.ldo;
  const float* x = p.x + i * k + kb;
  const bool first = kb == 0;
  for (int pj = 0; pj < cols; pj += kNr) {
    const int panel_cols = std::min(kNr, cols - pj);
    const float* panel = packed + size_t(pj / kNr) * kc * kNr;
    float* out = p.out + i * n + jc + pj;
    const float* bias = p.bias ? p.bias + jc + pj : nullptr;
    switch ((panel_cols + 15) / 16) {
      case 3:
        micro_kernel<R, 3>(x, k, panel, kc, out, n, panel_cols, bias, first);
        break;
      case 2:
        micro_kernel<R, 2>(x, k, panel, kc, out, n, panel_cols, bias, first);
        break;
      default:
        micro_kernel<R, 1>(x, k, panel, kc, out, n, panel_cols, bias, first);
        break;
    }
  }
}

template <vt_dtype D>
void packed_columns(const Problem& p, int jb, int je) {
  // Per thread and kept between calls: a fresh 512 KiB buffer per call would cost page faults.
  thread_local std::vector<float> packed;
  // Even k blocks (each pass over k re-reads and re-writes the tile of out), and as many
  // columns as fit the packed-block budget.
  const int k_blocks = (p.k + kMaxKc - 1) / kMaxKc;
  const int block_k = ((p.k + k_blocks - 1) / k_blocks + 15) / 16 * 16;
  const int block_cols = std::max<int>(kNr, int(kPackedBlockFloats / size_t(block_k)) / kNr * kNr);
  packed.resize(size_t(block_k) * block_cols);
  for (int kb = 0; kb < p.k; kb += block_k) {
    const int kc = std::min(block_k, p.k - kb);
    for (int jc = jb; jc < je; jc += block_cols) {
      const int cols = std::min(block_cols, je - jc);
      const float* b = packed.data();
      pack_panels<D>(p.w, size_t(p.k), p.n, jc, cols, kb, kc, packed.data());
      int i = 0;
      for (; i + kMr <= p.m; i += kMr) micro_panels<kMr>(p, i, kb, kc, b, jc, cols);
      switch (p.m - i) {
        case 7:
          micro_panels<7>(p, i, kb, kc, b, jc, cols);
          break;
        case 6:
          micro_panels<6>(p, i, kb, kc, b, jc, cols);
          break;
        case 5:
          micro_panels<5>(p, i, kb, kc, b, jc, cols);
          break;
        case 4:
          micro_panels<4>(p, i, kb, kc, b, jc, cols);
          break;
        case 3:
          micro_panels<3>(p, i, kb, kc, b, jc, cols);
          break;
        case 2:
          micro_panels<2>(p, i, kb, kc, b, jc, cols);
          break;
        case 1:
          micro_panels<1>(p, i, kb, kc, b, jc, cols);
          break;
        default:
          break;
      }
    }
  }
}

// Below this many rows, packing w costs more than the micro-kernel saves (measured on Zen 5:
// the two paths meet between m = 16 and 32).
constexpr int kPackedMinRows = 32;
#endif

template <vt_dtype D>
void run_columns(const Problem& p, int jb, int je) {
#if defined(__AVX512F__)
  if (p.m >= kPackedMinRows && !p.batch_invariant) return packed_columns<D>(p, jb, je);
#endif
  dot_columns<D>(p, jb, je);
}

}  // namespace

extern "C" vt_status vt_matmul(vt_context* ctx, const void* x, const void* w, const void* bias, void* out, int32_t m,
                               int32_t n, int32_t k, vt_dtype act_dtype, vt_dtype weight_dtype) {
  const char* op = "vt_matmul";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_act_dtype(op, act_dtype));
  VT_TRY(vt::check_matmul_args(op, x, w, out, m, n, k, weight_dtype));
  VT_CAPTURE_OR_RUN(ctx, vt_matmul, x, w, bias, out, m, n, k, act_dtype, weight_dtype);
  if (m == 0) return vt::ok();
  const bool quantized = vt::quant::is_quantized(weight_dtype);

  // The bias is tiny next to w: widen it once so the kernels read f32 (with quantized weights it
  // is in act_dtype, f32, already).
  std::vector<float> bias_f32;
  if (bias && weight_dtype != VT_F32 && !quantized) {
    bias_f32.resize(size_t(n));
    for (int j = 0; j < n; j++) bias_f32[j] = vt::load(bias, weight_dtype, j);
  }
  const Problem p{static_cast<const float*>(x),
                  w,
                  bias ? (bias_f32.empty() ? static_cast<const float*>(bias) : bias_f32.data()) : nullptr,
                  static_cast<float*>(out),
                  m,
                  n,
                  k,
                  size_t(n),
                  ctx->batch_invariant};

  if (quantized) {
    // Interleaved quantized weights (interleaved_quant.h), x in int8 at every m. Each row of out
    // depends on its row of x alone, so the numerics are batch-invariant as they are.
    thread_local vt::cpu::QuantizedActivations quantized_x;
    vt::cpu::quantize_activations(static_cast<const float*>(x), m, k, weight_dtype, quantized_x,
                                  vt::threads_for(ctx, size_t(m) * k / 16));
    const vt::cpu::QuantizedActivations& activations = quantized_x;
    const auto* wq = static_cast<const uint8_t*>(w);
    const int groups = (n + vt::cpu::interleaved::kGroupRows - 1) / vt::cpu::interleaved::kGroupRows;
#pragma omp parallel num_threads(vt::threads_for(ctx, size_t(m) * n * k))
    {
      const int t = omp_get_thread_num(), count = omp_get_num_threads();
      const int gb = int(int64_t(groups) * t / count), ge = int(int64_t(groups) * (t + 1) / count);
      vt::cpu::interleaved::dot_groups(activations, wq, weight_dtype, n, p.bias, p.out, size_t(n), gb, ge);
    }
    return vt::ok();
  }
  // Columns split in whole 16-wide vectors so every thread runs full micro-kernels.
  const int vectors = (n + 15) / 16;
  vt::with_dtype(weight_dtype, [&](auto D) {
#pragma omp parallel num_threads(vt::threads_for(ctx, size_t(m) * n * k))
    {
      const int t = omp_get_thread_num(), count = omp_get_num_threads();
      const int jb = std::min(n, int(int64_t(vectors) * t / count) * 16);
      const int je = std::min(n, int(int64_t(vectors) * (t + 1) / count) * 16);
      if (jb < je) run_columns<decltype(D)::value>(p, jb, je);
    }
  });
  return vt::ok();
}

extern "C" vt_status vt_pack_weights(vt_context* ctx, void* w, int32_t n, int32_t k, vt_dtype dtype) {
  const char* op = "vt_pack_weights";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_pack_weights_args(op, w, n, k, dtype));
  VT_TRY(vt::cpu::refuse_while_capturing(ctx, op));  // replaying it would pack the packed blocks again
  vt::cpu::interleaved::pack_matrix(static_cast<uint8_t*>(w), n, k, dtype, ctx->num_threads);
  return vt::ok();
}
