// Sixteen 32-bit lanes, one per row of a group of quantized weights in the interleaved layout
// (interleaved_quant.h): one 512-bit register where AVX-512 is there, else two 256-bit halves
// (rows 0-7, rows 8-15), so the interleaved matmul kernels are written once for both. Byte-wise,
// a value of I32x16 is 64 bytes, row r owning bytes 4r..4r+3 (a slab of 4 bytes per row).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace vt::cpu::lanes {

inline int32_t load_word(const void* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return v;
}

#if defined(__AVX512BW__)

struct I32x16 {
  __m512i v;
};
struct F32x16 {
  __m512 v;
};

inline I32x16 load(const void* p) { return {_mm512_loadu_si512(p)}; }
inline I32x16 zero() { return {_mm512_setzero_si512()}; }
inline I32x16 splat(int32_t v) { return {_mm512_set1_epi32(v)}; }
inline I32x16 splat_bytes(uint8_t v) { return {_mm512_set1_epi8(char(v))}; }
inline I32x16 operator+(I32x16 a, I32x16 b) { return {_mm512_add_epi32(a.v, b.v)}; }
inline I32x16 operator-(I32x16 a, I32x16 b) { return {_mm512_sub_epi32(a.v, b.v)}; }
inline I32x16 operator*(I32x16 a, I32x16 b) { return {_mm512_mullo_epi32(a.v, b.v)}; }
inline I32x16 operator&(I32x16 a, I32x16 b) { return {_mm512_and_si512(a.v, b.v)}; }
inline I32x16 operator|(I32x16 a, I32x16 b) { return {_mm512_or_si512(a.v, b.v)}; }
// Shifts of 16-bit units: callers mask the bits that cross a byte.
inline I32x16 shift_right16(I32x16 a, int n) { return {_mm512_srli_epi16(a.v, unsigned(n))}; }
inline I32x16 shift_left16(I32x16 a, int n) { return {_mm512_slli_epi16(a.v, unsigned(n))}; }
inline I32x16 shift_left32(I32x16 a, int n) { return {_mm512_slli_epi32(a.v, unsigned(n))}; }
inline I32x16 shift_right32(I32x16 a, int n) { return {_mm512_srli_epi32(a.v, unsigned(n))}; }

// The 4 bytes at p in every lane (one broadcast load).
inline __m512i broadcast4(const int8_t* p) { return _mm512_broadcastd_epi32(_mm_loadu_si32(p)); }

// acc + the sum, per lane, of its 4 unsigned bytes of w times the 4 signed bytes at x. Without
// VNNI, maddubs adds the products in pairs into int16, exact for w below 128 (2 x 127 x 128).
inline I32x16 dot4(I32x16 acc, I32x16 w, const int8_t* x) {
#if defined(__AVX512VNNI__)
  return {_mm512_dpbusd_epi32(acc.v, w.v, broadcast4(x))};
#else
  const __m512i pairs = _mm512_maddubs_epi16(w.v, broadcast4(x));
  return {_mm512_add_epi32(acc.v, _mm512_madd_epi16(pairs, _mm512_set1_epi16(1)))};
#endif
}

// dot4 for weight bytes of all 8 bits (Q8_0's q + 128). Without VNNI the pairs would saturate,
// so the weights go in as their top 7 bits (twice) and their low bit.
inline I32x16 dot4_wide(I32x16 acc, I32x16 w, const int8_t* x) {
#if defined(__AVX512VNNI__)
  return dot4(acc, w, x);
#else
  const __m512i x4 = broadcast4(x);
  const __m512i top = _mm512_maddubs_epi16(_mm512_and_si512(_mm512_srli_epi16(w.v, 1), _mm512_set1_epi8(0x7f)), x4);
  const __m512i low = _mm512_maddubs_epi16(_mm512_and_si512(w.v, _mm512_set1_epi8(1)), x4);
  const __m512i sum =
      _mm512_add_epi32(_mm512_madd_epi16(top, _mm512_set1_epi16(2)), _mm512_madd_epi16(low, _mm512_set1_epi16(1)));
  return {_mm512_add_epi32(acc.v, sum)};
#endif
}

// Per lane, its two int16 halves times the two int16 halves of `pair`, summed.
inline I32x16 madd16(I32x16 a, int32_t pair) { return {_mm512_madd_epi16(a.v, _mm512_set1_epi32(pair))}; }

// 16 bytes, one per row, widened to the lanes.
inline I32x16 widen_u8(__m128i bytes) { return {_mm512_cvtepu8_epi32(bytes)}; }
inline I32x16 widen_s8(__m128i bytes) { return {_mm512_cvtepi8_epi32(bytes)}; }
// Rows' bytes of a and b as each lane's pair of int16 (a in the low half), sign-extended.
inline I32x16 pairs_s8(__m128i a, __m128i b) {
  return {_mm512_cvtepi8_epi16(_mm256_set_m128i(_mm_unpackhi_epi8(a, b), _mm_unpacklo_epi8(a, b)))};
}

inline F32x16 zero_f() { return {_mm512_setzero_ps()}; }
inline F32x16 splat_f(float v) { return {_mm512_set1_ps(v)}; }
inline F32x16 to_float(I32x16 a) { return {_mm512_cvtepi32_ps(a.v)}; }
inline F32x16 operator*(F32x16 a, float b) { return {_mm512_mul_ps(a.v, _mm512_set1_ps(b))}; }
inline F32x16 operator-(F32x16 a, F32x16 b) { return {_mm512_sub_ps(a.v, b.v)}; }
inline F32x16 fma(F32x16 a, F32x16 b, F32x16 c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
// 16 f16 values (32 bytes) to f32.
inline F32x16 halves(const void* p) { return {_mm512_cvtph_ps(_mm256_loadu_si256(static_cast<const __m256i*>(p)))}; }
inline void store(float* out, F32x16 a) { _mm512_storeu_ps(out, a.v); }

#else

struct I32x16 {
  __m256i lo, hi;
};
struct F32x16 {
  __m256 lo, hi;
};

inline I32x16 load(const void* p) {
  const auto* q = static_cast<const __m256i*>(p);
  return {_mm256_loadu_si256(q), _mm256_loadu_si256(q + 1)};
}
inline I32x16 zero() { return {_mm256_setzero_si256(), _mm256_setzero_si256()}; }
inline I32x16 splat(int32_t v) { return {_mm256_set1_epi32(v), _mm256_set1_epi32(v)}; }
inline I32x16 splat_bytes(uint8_t v) { return {_mm256_set1_epi8(char(v)), _mm256_set1_epi8(char(v))}; }
inline I32x16 operator+(I32x16 a, I32x16 b) { return {_mm256_add_epi32(a.lo, b.lo), _mm256_add_epi32(a.hi, b.hi)}; }
inline I32x16 operator-(I32x16 a, I32x16 b) { return {_mm256_sub_epi32(a.lo, b.lo), _mm256_sub_epi32(a.hi, b.hi)}; }
inline I32x16 operator*(I32x16 a, I32x16 b) { return {_mm256_mullo_epi32(a.lo, b.lo), _mm256_mullo_epi32(a.hi, b.hi)}; }
inline I32x16 operator&(I32x16 a, I32x16 b) { return {_mm256_and_si256(a.lo, b.lo), _mm256_and_si256(a.hi, b.hi)}; }
inline I32x16 operator|(I32x16 a, I32x16 b) { return {_mm256_or_si256(a.lo, b.lo), _mm256_or_si256(a.hi, b.hi)}; }
inline I32x16 shift_right16(I32x16 a, int n) { return {_mm256_srli_epi16(a.lo, n), _mm256_srli_epi16(a.hi, n)}; }
inline I32x16 shift_left16(I32x16 a, int n) { return {_mm256_slli_epi16(a.lo, n), _mm256_slli_epi16(a.hi, n)}; }
inline I32x16 shift_left32(I32x16 a, int n) { return {_mm256_slli_epi32(a.lo, n), _mm256_slli_epi32(a.hi, n)}; }
inline I32x16 shift_right32(I32x16 a, int n) { return {_mm256_srli_epi32(a.lo, n), _mm256_srli_epi32(a.hi, n)}; }

#if defined(__AVXVNNI__) || (defined(__AVX512VNNI__) && defined(__AVX512VL__))
#define VT_LANES_VNNI 1
#endif

// As the AVX-512 dot4 and dot4_wide, on 8 lanes.
inline __m256i dot4_half(__m256i acc, __m256i w, __m256i x) {
#if defined(VT_LANES_VNNI)
  return _mm256_dpbusd_epi32(acc, w, x);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1)));
#endif
}
inline __m256i dot4_wide_half(__m256i acc, __m256i w, __m256i x) {
#if defined(VT_LANES_VNNI)
  return _mm256_dpbusd_epi32(acc, w, x);
#else
  const __m256i top = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(w, 1), _mm256_set1_epi8(0x7f)), x);
  const __m256i low = _mm256_maddubs_epi16(_mm256_and_si256(w, _mm256_set1_epi8(1)), x);
  return _mm256_add_epi32(acc, _mm256_add_epi32(_mm256_madd_epi16(top, _mm256_set1_epi16(2)),
                                                _mm256_madd_epi16(low, _mm256_set1_epi16(1))));
#endif
}
inline I32x16 dot4(I32x16 acc, I32x16 w, const int8_t* x) {
  const __m256i x4 = _mm256_broadcastd_epi32(_mm_loadu_si32(x));
  return {dot4_half(acc.lo, w.lo, x4), dot4_half(acc.hi, w.hi, x4)};
}
inline I32x16 dot4_wide(I32x16 acc, I32x16 w, const int8_t* x) {
  const __m256i x4 = _mm256_broadcastd_epi32(_mm_loadu_si32(x));
  return {dot4_wide_half(acc.lo, w.lo, x4), dot4_wide_half(acc.hi, w.hi, x4)};
}

inline I32x16 madd16(I32x16 a, int32_t pair) {
  const __m256i p = _mm256_set1_epi32(pair);
  return {_mm256_madd_epi16(a.lo, p), _mm256_madd_epi16(a.hi, p)};
}

inline I32x16 widen_u8(__m128i bytes) {
  return {_mm256_cvtepu8_epi32(bytes), _mm256_cvtepu8_epi32(_mm_srli_si128(bytes, 8))};
}
inline I32x16 widen_s8(__m128i bytes) {
  return {_mm256_cvtepi8_epi32(bytes), _mm256_cvtepi8_epi32(_mm_srli_si128(bytes, 8))};
}
inline I32x16 pairs_s8(__m128i a, __m128i b) {
  return {_mm256_cvtepi8_epi16(_mm_unpacklo_epi8(a, b)), _mm256_cvtepi8_epi16(_mm_unpackhi_epi8(a, b))};
}

inline F32x16 zero_f() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
inline F32x16 splat_f(float v) { return {_mm256_set1_ps(v), _mm256_set1_ps(v)}; }
inline F32x16 to_float(I32x16 a) { return {_mm256_cvtepi32_ps(a.lo), _mm256_cvtepi32_ps(a.hi)}; }
inline F32x16 operator*(F32x16 a, float b) {
  const __m256 s = _mm256_set1_ps(b);
  return {_mm256_mul_ps(a.lo, s), _mm256_mul_ps(a.hi, s)};
}
inline F32x16 operator-(F32x16 a, F32x16 b) { return {_mm256_sub_ps(a.lo, b.lo), _mm256_sub_ps(a.hi, b.hi)}; }
inline F32x16 fma(F32x16 a, F32x16 b, F32x16 c) {
  return {_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)};
}
inline F32x16 halves(const void* p) {
  const auto* q = static_cast<const __m128i*>(p);
  return {_mm256_cvtph_ps(_mm_loadu_si128(q)), _mm256_cvtph_ps(_mm_loadu_si128(q + 1))};
}
inline void store(float* out, F32x16 a) {
  _mm256_storeu_ps(out, a.lo);
  _mm256_storeu_ps(out + 8, a.hi);
}

#endif

inline __m128i load_bytes16(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }

}  // namespace vt::cpu::lanes
