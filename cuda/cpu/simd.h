// A minimal f32 vector type for the compute-bound kernels: AVX-512 when the compiler targets it,
// else AVX2 (with FMA and F16C), else plain floats. Kernels are written once against these
// functions and a width W, so the three variants share every line of their logic.
#pragma once

#include <cmath>
#include <cstdint>

#include "common.h"

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__) && defined(__F16C__))
#include <immintrin.h>
#endif

// GCC 12's AVX-512 intrinsics seed their unused result operand with `__Y = __Y`, which
// -Wmaybe-uninitialized (and, for the extracts in the reductions, -Wuninitialized) reports
// wherever they inline (GCC bug 105593, fixed in GCC 13).
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace vt::simd {

// Cephes' expf: exp(x) = 2^n * p(r) with x = n ln2 + r, |r| <= ln2 / 2; about 1 ulp.
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f;
constexpr float kLn2Lo = -2.12194440e-4f;
constexpr float kExpPoly[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                               4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};
// Below this the result would be denormal: it is flushed to 0, which also turns -inf into 0.
constexpr float kExpUnderflow = -87.0f;

#if defined(__AVX512F__)

constexpr int W = 16;
using vec = __m512;
inline vec zero() { return _mm512_setzero_ps(); }
inline vec set1(float x) { return _mm512_set1_ps(x); }
inline vec load(const float* p) { return _mm512_loadu_ps(p); }
inline void store(float* p, vec v) { _mm512_storeu_ps(p, v); }
inline vec add(vec a, vec b) { return _mm512_add_ps(a, b); }
inline vec sub(vec a, vec b) { return _mm512_sub_ps(a, b); }
inline vec mul(vec a, vec b) { return _mm512_mul_ps(a, b); }
inline vec div(vec a, vec b) { return _mm512_div_ps(a, b); }
inline vec max(vec a, vec b) { return _mm512_max_ps(a, b); }
inline vec fma(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }
inline float reduce_add(vec v) { return _mm512_reduce_add_ps(v); }
inline float reduce_max(vec v) { return _mm512_reduce_max_ps(v); }
// out[0..4) = the sums of a, b, c and d; interleaving them shares the shuffle tree (about a
// third of the work of four separate reductions).
inline void reduce_add4(vec a, vec b, vec c, vec d, float* out) {
  vec ab = add(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));  // per 128-bit lane: a b a b
  vec cd = add(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
  vec abcd = add(_mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(1, 0, 1, 0)),  // per 128-bit lane: a b c d
                 _mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(3, 2, 3, 2)));
  __m256 half =
      _mm256_add_ps(_mm512_castps512_ps256(abcd), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(abcd), 1)));
  _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(half), _mm256_extractf128_ps(half, 1)));
}
inline vec load_f16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
inline vec load_bf16(const uint16_t* p) {
  __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}
// Each lane rounded to the nearest bf16 (ties to even), as vt::f32_to_bf16; a NaN stays a NaN.
inline vec round_bf16(vec v) {
  const __m512i bits = _mm512_castps_si512(v);
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  const __m512i up = _mm512_add_epi32(bits, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7fff)));
  const vec rounded = _mm512_castsi512_ps(_mm512_and_si512(up, _mm512_set1_epi32(int(0xffff0000u))));
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), rounded, v);
}

// exp(x) for x <= 0 (softmax weights after subtracting the running maximum).
inline vec exp_nonpositive(vec x) {
  __mmask16 underflow = _mm512_cmp_ps_mask(x, set1(kExpUnderflow), _CMP_LT_OQ);
  x = max(x, set1(kExpUnderflow));
  vec n = _mm512_roundscale_ps(mul(x, set1(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  vec r = _mm512_fnmadd_ps(n, set1(kLn2Hi), x);
  r = _mm512_fnmadd_ps(n, set1(kLn2Lo), r);
  vec p = set1(kExpPoly[0]);
  for (int i = 1; i < 6; i++) p = fma(p, r, set1(kExpPoly[i]));
  p = add(fma(p, mul(r, r), r), set1(1.0f));
  return _mm512_maskz_mov_ps(_knot_mask16(underflow), _mm512_scalef_ps(p, n));
}

#elif defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

constexpr int W = 8;
using vec = __m256;
inline vec zero() { return _mm256_setzero_ps(); }
inline vec set1(float x) { return _mm256_set1_ps(x); }
inline vec load(const float* p) { return _mm256_loadu_ps(p); }
inline void store(float* p, vec v) { _mm256_storeu_ps(p, v); }
inline vec add(vec a, vec b) { return _mm256_add_ps(a, b); }
inline vec sub(vec a, vec b) { return _mm256_sub_ps(a, b); }
inline vec mul(vec a, vec b) { return _mm256_mul_ps(a, b); }
inline vec div(vec a, vec b) { return _mm256_div_ps(a, b); }
inline vec max(vec a, vec b) { return _mm256_max_ps(a, b); }
inline vec fma(vec a, vec b, vec c) { return _mm256_fmadd_ps(a, b, c); }
inline float reduce_add(vec v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
inline float reduce_max(vec v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
}
inline void reduce_add4(vec a, vec b, vec c, vec d, float* out) {
  vec ab = add(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b));  // per 128-bit lane: a b a b
  vec cd = add(_mm256_unpacklo_ps(c, d), _mm256_unpackhi_ps(c, d));
  vec abcd = add(_mm256_shuffle_ps(ab, cd, _MM_SHUFFLE(1, 0, 1, 0)),  // per 128-bit lane: a b c d
                 _mm256_shuffle_ps(ab, cd, _MM_SHUFFLE(3, 2, 3, 2)));
  _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1)));
}
inline vec load_f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
inline vec load_bf16(const uint16_t* p) {
  __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}
inline vec round_bf16(vec v) {
  const __m256i bits = _mm256_castps_si256(v);
  const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
  const __m256i up = _mm256_add_epi32(bits, _mm256_add_epi32(odd, _mm256_set1_epi32(0x7fff)));
  const vec rounded = _mm256_castsi256_ps(_mm256_and_si256(up, _mm256_set1_epi32(int(0xffff0000u))));
  return _mm256_blendv_ps(rounded, v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}

// exp(x) for x <= 0; n >= -126 after the clamp, so 2^n is a normal float built from its bits.
inline vec exp_nonpositive(vec x) {
  vec keep = _mm256_cmp_ps(x, set1(kExpUnderflow), _CMP_GE_OQ);
  x = max(x, set1(kExpUnderflow));
  vec n = _mm256_round_ps(mul(x, set1(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  vec r = _mm256_fnmadd_ps(n, set1(kLn2Hi), x);
  r = _mm256_fnmadd_ps(n, set1(kLn2Lo), r);
  vec p = set1(kExpPoly[0]);
  for (int i = 1; i < 6; i++) p = fma(p, r, set1(kExpPoly[i]));
  p = add(fma(p, mul(r, r), r), set1(1.0f));
  __m256i exponent = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_and_ps(mul(p, _mm256_castsi256_ps(exponent)), keep);
}

#else

constexpr int W = 1;
using vec = float;
inline vec zero() { return 0.0f; }
inline vec set1(float x) { return x; }
inline vec load(const float* p) { return *p; }
inline void store(float* p, vec v) { *p = v; }
inline vec add(vec a, vec b) { return a + b; }
inline vec sub(vec a, vec b) { return a - b; }
inline vec mul(vec a, vec b) { return a * b; }
inline vec div(vec a, vec b) { return a / b; }
inline vec max(vec a, vec b) { return a > b ? a : b; }
inline vec fma(vec a, vec b, vec c) { return a * b + c; }
inline float reduce_add(vec v) { return v; }
inline float reduce_max(vec v) { return v; }
inline void reduce_add4(vec a, vec b, vec c, vec d, float* out) { out[0] = a, out[1] = b, out[2] = c, out[3] = d; }
inline vec load_f16(const uint16_t* p) { return f16_to_f32(*p); }
inline vec load_bf16(const uint16_t* p) { return bf16_to_f32(*p); }
inline vec round_bf16(vec v) { return bf16_to_f32(f32_to_bf16(v)); }
inline vec exp_nonpositive(vec x) { return x < kExpUnderflow ? 0.0f : std::exp(x); }

#endif

// cap * tanh(x / cap) (Gemma 2's soft-capping of attention scores) through exp of a nonpositive
// argument: with y = x / cap, tanh(y) = (1 - e^(-2|y|)) / (1 + e^(-2|y|)) * y / |y| (|y| kept off
// 0). Its error is absolute, a few cap * 1e-7, which is what a softmax over the result feels.
inline vec soft_cap(vec x, float cap) {
  vec y = mul(x, set1(1.0f / cap));
  vec magnitude = max(y, sub(zero(), y));
  vec t = exp_nonpositive(mul(magnitude, set1(-2.0f)));
  vec numerator = mul(sub(set1(1.0f), t), y);
  vec denominator = mul(add(set1(1.0f), t), max(magnitude, set1(1e-30f)));
  return mul(set1(cap), div(numerator, denominator));
}

// n rounded up to a whole number of vectors.
constexpr int round_up(int n) { return (n + W - 1) / W * W; }

}  // namespace vt::simd
