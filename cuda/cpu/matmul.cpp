// vt_matmul on the CPU: out[m, n] = x[m, k] · w[n, k]^T + bias[n], x and out in f32, w and
// bias in f32, f16 or bf16 (kept in their dtype, widened to f32 in registers), f32 accumulation.
//
// Two paths, both splitting the output columns n evenly across the context's threads, so a
// thread owns out[:, its columns] and reads only its rows of w (no barriers, no shared writes):
//  - Dot path (decode, small m): memory-bound on streaming w once. A thread walks its rows of w
//    a few at a time and computes every row of x against them (register tiles of
//    kDotRows x kDotCols dot products, each accumulated lane-wise along k and summed at the end),
//    so each weight byte comes from DRAM once and x stays in L1/L2 (k is blocked when m*k would
//    not fit L2). It aims at the machine's DRAM bandwidth in weight bytes per second.
//  - Packed path (prefill, large m; AVX-512 only): compute-bound. Per block of kKc k-values and
//    kNc columns a thread packs w, transposed and widened to f32, into panels of 48 columns;
//    an 8 x 48 micro-kernel (24 zmm accumulators) broadcasts x straight from its rows (L1) and
//    streams the panel from L2. It aims at the f32 FMA peak (2 x 512-bit FMA per cycle on
//    Zen 4/5); packing costs O(n*k), amortised over m rows.
// Builds without AVX-512 use the dot path for every m, with AVX2+FMA or plain scalar code.
#include <omp.h>

#include <algorithm>
#include <vector>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__) && defined(__F16C__))
// GCC 12 flags the deliberately undefined pass-through operands inside its own AVX-512
// intrinsics once they are inlined here; the warnings are false positives.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#endif

#include "common.h"

namespace {

// ---- SIMD vectors of f32 for the dot path: one struct per instruction set ------------------

#if defined(__AVX512F__)
struct Simd {
  using V = __m512;
  static constexpr int width = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static float sum(V v) { return _mm512_reduce_add_ps(v); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  template <vt_dtype D>
  static V load_weights(const void* base, size_t i) {
    if constexpr (D == VT_F32) {
      return _mm512_loadu_ps(static_cast<const float*>(base) + i);
    } else {
      __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(base) + i));
      if constexpr (D == VT_F16) return _mm512_cvtph_ps(h);
      // bf16 is the top half of an f32: widen and shift.
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
  }
};
#elif defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
struct Simd {
  using V = __m256;
  static constexpr int width = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static float sum(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  template <vt_dtype D>
  static V load_weights(const void* base, size_t i) {
    if constexpr (D == VT_F32) {
      return _mm256_loadu_ps(static_cast<const float*>(base) + i);
    } else {
      __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + i));
      if constexpr (D == VT_F16) return _mm256_cvtph_ps(h);
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
  }
};
#else
struct Simd {
  using V = float;
  static constexpr int width = 1;
  static V zero() { return 0.0f; }
  static V fma(V a, V b, V c) { return a * b + c; }
  static float sum(V v) { return v; }
  static V load(const float* p) { return *p; }
  template <vt_dtype D>
  static V load_weights(const void* base, size_t i) { return vt::load(base, D, i); }
};
#endif

// ---- dot path ----------------------------------------------------------------------------

// A register tile is kDotRows rows of x by kDotCols rows of w (output columns): 16
// accumulators plus the w vectors fit the 32 zmm registers; AVX2's 16 ymm take half as many.
constexpr int kDotRows = 2;
#if defined(__AVX512F__)
constexpr int kDotCols = 8;
#else
constexpr int kDotCols = 4;
#endif
// x rows of one k block should stay in L2 (1 MiB per core on Zen 4/5) while w streams past.
constexpr size_t kDotXBlockFloats = 64 * 1024;

struct Problem {
  const float* x;
  const void* w;
  const float* bias;  // f32, or null
  float* out;
  int m, n, k;
};

// out[i0.., j0..] (+)= x[i0 + i, kb:ke] · w[j0 + j, kb:ke] for i < R, j < C. The first k block
// stores (adding the bias), later ones accumulate.
template <vt_dtype D, int R, int C>
void dot_tile(const Problem& p, int i0, int j0, int kb, int ke, bool first) {
  using V = Simd::V;
  constexpr int W = Simd::width;
  const size_t k = size_t(p.k);
  V acc[R][C];
  for (int i = 0; i < R; i++)
    for (int j = 0; j < C; j++) acc[i][j] = Simd::zero();
  const float* x = p.x + size_t(i0) * k;
  const size_t w0 = size_t(j0) * k;
  int q = kb;
  for (; q + W <= ke; q += W) {
    V wv[C];
#pragma GCC unroll 8
    for (int j = 0; j < C; j++) wv[j] = Simd::load_weights<D>(p.w, w0 + j * k + q);
#pragma GCC unroll 8
    for (int i = 0; i < R; i++) {
      V xv = Simd::load(x + i * k + q);
#pragma GCC unroll 8
      for (int j = 0; j < C; j++) acc[i][j] = Simd::fma(xv, wv[j], acc[i][j]);
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
      for (int j = 0; j < C; j++) acc[i][j] = Simd::fma(Simd::load(xt[i]), Simd::load(wt[j]), acc[i][j]);
  }
  for (int i = 0; i < R; i++) {
    float* o = p.out + size_t(i0 + i) * p.n + j0;
    for (int j = 0; j < C; j++) {
      float s = Simd::sum(acc[i][j]);
      o[j] = first ? s + (p.bias ? p.bias[j0 + j] : 0.0f) : o[j] + s;
    }
  }
}

template <vt_dtype D, int C>
void dot_rows(const Problem& p, int j0, int kb, int ke, bool first) {
  int i = 0;
  for (; i + kDotRows <= p.m; i += kDotRows) dot_tile<D, kDotRows, C>(p, i, j0, kb, ke, first);
  if (i < p.m) dot_tile<D, 1, C>(p, i, j0, kb, ke, first);
}

// Columns [jb, je) of out, all rows.
template <vt_dtype D>
void dot_columns(const Problem& p, int jb, int je) {
  const int block = int(std::max<size_t>(256, kDotXBlockFloats / size_t(p.m)) / 64 * 64);
  for (int kb = 0; kb < p.k; kb += block) {
    const int ke = std::min(p.k, kb + block);
    int j = jb;
    for (; j + kDotCols <= je; j += kDotCols) dot_rows<D, kDotCols>(p, j, kb, ke, kb == 0);
    for (; j < je; j++) dot_rows<D, 1>(p, j, kb, ke, kb == 0);
  }
}

// ---- packed path (AVX-512) ---------------------------------------------------------------

#if defined(__AVX512F__)
constexpr int kMr = 8;     // rows of x per micro-tile
constexpr int kNr = 48;    // columns per packed panel (3 zmm)
constexpr int kMaxKc = 512;  // k per block: an 8 x 512 slice of x is 16 KiB of L1
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
void pack_panels(const void* w, size_t k, int j0, int cols, int kb, int kc, float* packed) {
  for (int jv = 0; jv < cols; jv += 16) {
    const int panel = jv / kNr;
    const int panel_cols = std::min(kNr, cols - panel * kNr);
    const int width = (panel_cols + 15) / 16 * 16;
    float* dst = packed + size_t(panel) * kc * kNr + (jv - panel * kNr);
    const int rows = std::min(16, cols - jv);
    for (int q = 0; q < kc; q += 16) {
      const int count = std::min(16, kc - q);
      __m512 r[16];
      for (int j = 0; j < 16; j++) {
        if (j >= rows) {
          r[j] = _mm512_setzero_ps();
        } else {
          const size_t at = size_t(j0 + jv + j) * k + size_t(kb + q);
          r[j] = count == 16 ? Simd::load_weights<D>(w, at) : load_weights_masked<D>(w, at, count);
        }
      }
      transpose16(r);
      for (int t = 0; t < count; t++) _mm512_storeu_ps(dst + size_t(q + t) * width, r[t]);
    }
  }
}

// out[R rows, 16*V columns (the last `cols` of them valid)] (+)= x rows · packed panel.
template <int R, int V>
void micro_kernel(const float* x, size_t ldx, const float* panel, int kc, float* out, size_t ldo,
                  int cols, const float* bias, bool first) {
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
    const __m512 add = first ? (bias ? _mm512_maskz_loadu_ps(mask, bias + 16 * v) : _mm512_setzero_ps())
                             : _mm512_setzero_ps();
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
  const size_t k = size_t(p.k), n = size_t(p.n);
  const float* x = p.x + i * k + kb;
  const bool first = kb == 0;
  for (int pj = 0; pj < cols; pj += kNr) {
    const int panel_cols = std::min(kNr, cols - pj);
    const float* panel = packed + size_t(pj / kNr) * kc * kNr;
    float* out = p.out + i * n + jc + pj;
    const float* bias = p.bias ? p.bias + jc + pj : nullptr;
    switch ((panel_cols + 15) / 16) {
      case 3: micro_kernel<R, 3>(x, k, panel, kc, out, n, panel_cols, bias, first); break;
      case 2: micro_kernel<R, 2>(x, k, panel, kc, out, n, panel_cols, bias, first); break;
      default: micro_kernel<R, 1>(x, k, panel, kc, out, n, panel_cols, bias, first); break;
    }
  }
}

template <vt_dtype D>
void packed_columns(const Problem& p, int jb, int je) {
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
      pack_panels<D>(p.w, size_t(p.k), jc, cols, kb, kc, packed.data());
      int i = 0;
      for (; i + kMr <= p.m; i += kMr) micro_panels<kMr>(p, i, kb, kc, b, jc, cols);
      switch (p.m - i) {
        case 7: micro_panels<7>(p, i, kb, kc, b, jc, cols); break;
        case 6: micro_panels<6>(p, i, kb, kc, b, jc, cols); break;
        case 5: micro_panels<5>(p, i, kb, kc, b, jc, cols); break;
        case 4: micro_panels<4>(p, i, kb, kc, b, jc, cols); break;
        case 3: micro_panels<3>(p, i, kb, kc, b, jc, cols); break;
        case 2: micro_panels<2>(p, i, kb, kc, b, jc, cols); break;
        case 1: micro_panels<1>(p, i, kb, kc, b, jc, cols); break;
        default: break;
      }
    }
  }
}

// Below this many rows, packing w (which then streams from DRAM without overlapping compute)
// costs more than the micro-kernel saves.
constexpr int kPackedMinRows = 64;
#endif

template <vt_dtype D>
void run_columns(const Problem& p, int jb, int je) {
#if defined(__AVX512F__)
  if (p.m >= kPackedMinRows) return packed_columns<D>(p, jb, je);
#endif
  dot_columns<D>(p, jb, je);
}

}  // namespace

extern "C" vt_status vt_matmul(vt_context* ctx, const void* x, const void* w, const void* bias, void* out,
                               int32_t m, int32_t n, int32_t k, vt_dtype act_dtype, vt_dtype weight_dtype) {
  const char* op = "vt_matmul";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_REQUIRE(vt::valid_dtype(act_dtype), op, "unknown act_dtype " + std::to_string(act_dtype));
  VT_REQUIRE(vt::valid_dtype(weight_dtype), op, "unknown weight_dtype " + std::to_string(weight_dtype));
  if (act_dtype != VT_F32)
    return vt::fail(VT_ERR_UNSUPPORTED, "vt_matmul: the CPU backend computes activations in f32 only (act_dtype " +
                                            std::to_string(act_dtype) + ")");
  VT_REQUIRE(m >= 0, op, "m must be >= 0, got " + std::to_string(m));
  VT_REQUIRE(n > 0, op, "n must be > 0, got " + std::to_string(n));
  VT_REQUIRE(k > 0, op, "k must be > 0, got " + std::to_string(k));
  if (m == 0) return vt::ok();
  VT_REQUIRE(x && w && out, op, "x, w and out must not be NULL");

  // The bias is tiny next to w: widen it once so the kernels read f32.
  std::vector<float> bias_f32;
  if (bias && weight_dtype != VT_F32) {
    bias_f32.resize(size_t(n));
    for (int j = 0; j < n; j++) bias_f32[j] = vt::load(bias, weight_dtype, j);
  }
  const Problem p{static_cast<const float*>(x), w,
                  bias ? (weight_dtype == VT_F32 ? static_cast<const float*>(bias) : bias_f32.data()) : nullptr,
                  static_cast<float*>(out), m, n, k};

  // Split columns in whole 16-wide vectors so every thread runs full micro-kernels.
  const int threads = std::max(1, ctx->num_threads);
  const int vectors = (n + 15) / 16;
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), count = omp_get_num_threads();
    const int jb = std::min(n, int(int64_t(vectors) * t / count) * 16);
    const int je = std::min(n, int(int64_t(vectors) * (t + 1) / count) * 16);
    if (jb < je) {
      switch (weight_dtype) {
        case VT_F32: run_columns<VT_F32>(p, jb, je); break;
        case VT_F16: run_columns<VT_F16>(p, jb, je); break;
        default: run_columns<VT_BF16>(p, jb, je); break;
      }
    }
  }
  return vt::ok();
}
