// vt_matmul on the CPU: out[m, n] = x[m, k] · w[n, k]^T + bias[n], x and out in f32, w and
// bias in f32, f16 or bf16 (kept in their dtype, widened to f32 in registers), f32 accumulation.
// With bf16 weights, x is rounded to bf16 as it is read (matmul_bf16_pairs.h), on every variant.
//
// Both paths split the output columns evenly across the context's threads: a thread owns
// out[:, its columns] and reads only its rows of w, so there are no barriers and no shared writes.
//  - Dot path (decode, m < 32): memory-bound on streaming w once. A thread walks its rows of w
//    8 at a time and computes every row of x against them in register tiles of 2 x 8 dot
//    products (accumulated lane-wise along k, summed at the end), so each weight byte comes from
//    DRAM once (software-prefetched a tile ahead); k is blocked so x stays in L2 and the 8 rows
//    of w in L1 across the passes of x. Its bound is DRAM bandwidth in weight bytes per second;
//    from m ~ 8 (bf16) or 16 (f32) the FMAs take over.
//  - Packed path (prefill, m >= 32; AVX-512 only; packed_gemm.h): compute-bound. w is packed
//    into panels of f32 (widened) and multiplied with f32 FMAs, whose peak bounds it (two
//    512-bit FMAs per cycle on Zen 5); with AVX512-BF16, bf16 w is packed as pairs instead and
//    multiplied with vdpbf16ps, twice the products per instruction.
// Builds without AVX-512 use the dot path for every m, with AVX2+FMA or plain scalar code.
// Quantized w has kernels of its own (interleaved_dot.cpp), columns split by groups of 16 rows.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "checks.h"
#include "common.h"
#include "interleaved_quant.h"
#include "matmul_bf16_pairs.h"
#include "matmul_problem.h"
#include "op.h"
#include "packed_gemm.h"
#include "quantized_activations.h"
#include "simd.h"

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

using Problem = vt::cpu::MatmulProblem;

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
      if constexpr (D == VT_BF16) xv = simd::round_bf16(xv);
#pragma GCC unroll 8
      for (int j = 0; j < C; j++) acc[i][j] = simd::fma(xv, wv[j], acc[i][j]);
    }
  }
  if (q < ke) {
    // The k remainder goes through zero-padded f32 copies so the loads stay full-width.
    alignas(64) float xt[R][W] = {};
    alignas(64) float wt[C][W] = {};
    for (int t = q; t < ke; t++) {
      for (int i = 0; i < R; i++)
        xt[i][t - q] = D == VT_BF16 ? vt::bf16_to_f32(vt::f32_to_bf16(x[i * k + t])) : x[i * k + t];
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
  // With a single pass of x rows over each tile, w never needs to stay in L1. Batch-invariant
  // products block k as for one row whatever m is: each k block's sum is rounded on its own, so
  // blocks that depended on m would make a row's result depend on the rows beside it.
  const int m = p.batch_invariant ? 1 : p.m;
  const size_t x_fit = kDotXBlockBytes / (size_t(m) * 4);
  const size_t fit = m <= kDotRows ? x_fit : std::min(x_fit, kDotWTileBytes / (kDotCols * sizeof_dtype<D>));
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
namespace packed = vt::cpu::packed;

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

// w widened to f32 panels, multiplied with f32 FMAs (packed_gemm.h's Panels).
template <vt_dtype D>
struct F32Panels {
  using X = float;
  static constexpr int kKPerRow = 1;
  static constexpr size_t kWeightBytes = sizeof_dtype<D>;

  static __m512 weight_segment(const Problem& p, size_t at, int count) {
    return count == 16 ? load_weights<D>(p.w, at) : load_weights_masked<D>(p.w, at, count);
  }

  // x as it is, or rounded to bf16 for bf16 weights.
  static const float* x_rows(const Problem& p, int i, int rows, int kb, int kc, float* room, size_t& ldx) {
    const float* x = p.x + size_t(i) * p.k + kb;
    if constexpr (D != VT_BF16) {
      ldx = size_t(p.k);
      return x;
    }
    for (int r = 0; r < rows; r++)
#pragma omp simd
      for (int q = 0; q < kc; q++) room[r * kc + q] = vt::bf16_to_f32(vt::f32_to_bf16(x[size_t(r) * p.k + q]));
    ldx = size_t(kc);
    return room;
  }

  static __m512 broadcast_x(const float* x) { return _mm512_set1_ps(*x); }
  static __m512 multiply_add(__m512 a, __m512 b, __m512 acc) { return _mm512_fmadd_ps(a, b, acc); }
};

// Below this many rows, packing w costs more than the micro-kernel saves (measured on Zen 5:
// the two paths meet between m = 16 and 32).
constexpr int kPackedMinRows = 32;
#endif

template <vt_dtype D>
void run_columns(const Problem& p, int jb, int je) {
#if defined(__AVX512F__)
  if (p.m >= kPackedMinRows && !p.batch_invariant) {
#if defined(__AVX512BF16__)
    if constexpr (D == VT_BF16) return vt::cpu::bf16::pairs_columns(p, jb, je);
#endif
    return packed::packed_columns<F32Panels<D>>(p, jb, je);
  }
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
  VT_RECORD_QUEUE_OR_RUN(ctx, vt_matmul, x, w, bias, out, m, n, k, act_dtype, weight_dtype);
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
  VT_RUN_ON_STREAM_AND_WAIT(ctx, vt_pack_weights, w, n, k, dtype);
  vt::cpu::interleaved::pack_matrix(static_cast<uint8_t*>(w), n, k, dtype, ctx->num_threads);
  return vt::ok();
}
