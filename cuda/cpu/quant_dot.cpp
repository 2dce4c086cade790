// The integer decode path of quantized matmuls (see quant_dot.h). Products of weight bytes and x
// bytes go through maddubs (unsigned x signed, pairs summed into int16) and madd (pairs of int16
// times a scale, summed into int32), or VNNI's dpbusd:
//   Q4_0, Q4_1, Q5_0, Q5_1 and the K-quants are unsigned as stored; their offsets (Q4_0's 8,
//   Q5_0's 16, Q6_K's 32) and mins come back through the sums of x.
//   Q8_0 is signed: |w| times x with w's sign.
// No step saturates: a pair is at most 2 x 128 x 127 < 2^15.
#include "quant_dot.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "quant.h"

// GCC 12 flags (as -Wuninitialized) the undefined pass-through operand of AVX-512 intrinsics
// (the casts and reductions); a false positive, as in matmul.cpp.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace vt::cpu {
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float half(const uint8_t* p) {
  uint16_t h;
  __builtin_memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

inline __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

inline uint32_t word(const uint8_t* p) {
  uint32_t v;
  __builtin_memcpy(&v, p, 4);
  return v;
}

// 16 bytes' low nibbles then their high nibbles: Q4_0's element order.
inline __m256i nibbles_low_then_high(const uint8_t* p) {
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i mask = _mm_set1_epi8(0x0f);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(bytes, 4), mask), _mm_and_si128(bytes, mask));
}

// Eight int32 sums of four unsigned weight bytes times signed x bytes, each pair scaled by `scale`
// (int16 lanes: the first 8 cover values 0-15, the last 8 values 16-31).
inline __m256i dot_u8(__m256i w, __m256i x, __m256i scale) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), scale);
}

// Eight int32 sums of four unsigned weight bytes times signed x bytes: one VNNI instruction where
// the CPU has it.
inline __m256i dot_u8(__m256i w, __m256i x) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), w, x);
#else
  return _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1));
#endif
}

// Byte i of the result is 0x10 if bit i of `bits` is set, else 0: Q5's fifth bits in place.
inline __m256i fifth_bits(uint32_t bits) {
  // Byte i takes byte i / 8 of the word (the shuffle works within 128-bit lanes, each holding the
  // word four times), then keeps bit i % 8 by setting every other bit and comparing with all-ones.
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(int(bits)), _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
  const __m256i others = _mm256_set1_epi64x(int64_t(0x7fbfdfeff7fbfdfeull));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_or_si256(spread, others), _mm256_set1_epi8(-1));
  return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

// A 32-value block as unsigned bytes (Q8_0's as signed ones), its scale d, and what its values add
// per unit of x: value = d * q + offset (offset -8 d for Q4_0, -16 d for Q5_0, the min for Q4_1
// and Q5_1, 0 for Q8_0).
struct Block32 {
  __m256i q;
  float d, offset;
};

template <vt_dtype T>
inline Block32 unpack32(const uint8_t* b) {
  const float d = half(b);
  switch (T) {
    case VT_Q8_0:
      return {load32(b + 2), d, 0.0f};
    case VT_Q4_0:
      return {nibbles_low_then_high(b + 2), d, -8.0f * d};
    case VT_Q4_1:
      return {nibbles_low_then_high(b + 4), d, half(b + 2)};
    case VT_Q5_0:
      return {_mm256_or_si256(nibbles_low_then_high(b + 6), fifth_bits(word(b + 2))), d, -16.0f * d};
    default:  // VT_Q5_1
      return {_mm256_or_si256(nibbles_low_then_high(b + 8), fifth_bits(word(b + 4))), d, half(b + 2)};
  }
}

// The 32-value formats: x in blocks of 32, a float multiply-add per block. M rows of x, known at
// compile time so the accumulators stay in registers.
template <vt_dtype T, int M>
void dot_rows_32(const QuantizedActivations& x, const uint8_t* w, const float* bias, float* out, size_t ldo, int jb,
                 int je) {
  const int chunks = x.k / 32, block_bytes = vt::quant::block_bytes(T);
  for (int j = jb; j < je; j++) {
    const uint8_t* row = w + size_t(j) * chunks * block_bytes;
    __m256 acc[M];
    float offset[M] = {};
    for (int i = 0; i < M; i++) acc[i] = _mm256_setzero_ps();
    for (int c = 0; c < chunks; c++) {
      const Block32 block = unpack32<T>(row + size_t(c) * block_bytes);
      const __m256i magnitude = T == VT_Q8_0 ? _mm256_abs_epi8(block.q) : block.q;
      for (int i = 0; i < M; i++) {
        const size_t at = size_t(i) * chunks + c;
        __m256i xq = load32(x.q.data() + at * 32);
        if (T == VT_Q8_0) xq = _mm256_sign_epi8(xq, block.q);
        const float dx = x.scale[at];
        acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_u8(magnitude, xq)), _mm256_set1_ps(block.d * dx), acc[i]);
        if (T != VT_Q8_0) offset[i] += block.offset * dx * float(x.sums[2 * at] + x.sums[2 * at + 1]);
      }
    }
    for (int i = 0; i < M; i++) out[size_t(i) * ldo + j] = hsum(acc[i]) + offset[i] + (bias ? bias[j] : 0.0f);
  }
}

// A K-quant super-block unpacked: 8 chunks of 32 unsigned bytes, each half-chunk's integer scale
// (as int16 lanes for madd), and the integer coefficients of the 16 sums of x (the mins, or the
// offset 32 times the scales), with value = d * (scale * q) - dmin * (coefficient per 16 values).
struct SuperBlock {
  __m256i q[8];
  __m256i scale[8];
  __m256i sum_coefficients;  // 16 int16
  float d, dmin;
};

inline void unpack_q45_k(const uint8_t* b, bool five, SuperBlock& s) {
  s.d = half(b);
  s.dmin = half(b + 2);
  // The 12 bytes of 6-bit scales and mins (quant.h's k_scale_min), four at a time.
  const uint32_t a = word(b + 4), m = word(b + 8), c = word(b + 12);
  const uint64_t scales = uint64_t(a & 0x3f3f3f3f) | uint64_t((c & 0x0f0f0f0f) | ((a >> 2) & 0x30303030)) << 32;
  const uint64_t mins = uint64_t(m & 0x3f3f3f3f) | uint64_t(((c >> 4) & 0x0f0f0f0f) | ((m >> 2) & 0x30303030)) << 32;
  const __m128i min_bytes = _mm_cvtsi64_si128(int64_t(mins));
  s.sum_coefficients = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(min_bytes, min_bytes));
  const uint8_t* qs = b + (five ? 48 : 16);
  const __m256i mask = _mm256_set1_epi8(0x0f);
  const __m256i high = five ? load32(b + 16) : _mm256_setzero_si256();
  for (int p = 0; p < 4; p++) {
    const __m256i bytes = load32(qs + 32 * p);
    s.q[2 * p] = _mm256_and_si256(bytes, mask);
    s.q[2 * p + 1] = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), mask);
  }
  for (int j = 0; j < 8; j++) {
    if (five) {
      const __m256i bit = _mm256_and_si256(_mm256_srli_epi16(high, j), _mm256_set1_epi8(1));
      s.q[j] = _mm256_or_si256(s.q[j], _mm256_slli_epi16(bit, 4));
    }
    s.scale[j] = _mm256_set1_epi16(int16_t((scales >> (8 * j)) & 0xff));
  }
}

inline void unpack_q6_k(const uint8_t* b, SuperBlock& s) {
  s.d = half(b + 208);
  s.dmin = s.d * 32.0f;  // value = d * scale * (q - 32)
  const auto* scales = reinterpret_cast<const int8_t*>(b + 192);
  s.sum_coefficients = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales)));
  const __m256i mask = _mm256_set1_epi8(0x0f), three = _mm256_set1_epi8(3);
  for (int c = 0; c < 8; c++) {
    const int h = c / 4, g = c % 4;
    const __m256i low = _mm256_and_si256(_mm256_srli_epi16(load32(b + 64 * h + 32 * (g & 1)), 4 * (g / 2)), mask);
    const __m256i high = _mm256_and_si256(_mm256_srli_epi16(load32(b + 128 + 32 * h), 2 * g), three);
    s.q[c] = _mm256_or_si256(low, _mm256_slli_epi16(high, 4));
    s.scale[c] = _mm256_set_m128i(_mm_set1_epi16(scales[2 * c + 1]), _mm_set1_epi16(scales[2 * c]));
  }
}

// The K-quants: x in blocks of 256, integer sums over a whole super-block, one float
// multiply-add per super-block (and one more for the sums of x).
template <int M>
void dot_rows_k(const QuantizedActivations& x, const uint8_t* w, vt_dtype type, const float* bias, float* out,
                size_t ldo, int jb, int je) {
  const int blocks = x.k / 256, bytes = vt::quant::block_bytes(type);
  for (int j = jb; j < je; j++) {
    const uint8_t* row = w + size_t(j) * blocks * bytes;
    __m256 acc[M], offset[M];
    for (int i = 0; i < M; i++) acc[i] = offset[i] = _mm256_setzero_ps();
    for (int sb = 0; sb < blocks; sb++) {
      SuperBlock s;
      const uint8_t* b = row + size_t(sb) * bytes;
      if (type == VT_Q6_K)
        unpack_q6_k(b, s);
      else
        unpack_q45_k(b, type == VT_Q5_K, s);
      for (int i = 0; i < M; i++) {
        const size_t at = size_t(i) * blocks + sb;
        const int8_t* xq = x.q.data() + at * 256;
        __m256i sum = _mm256_setzero_si256();
        for (int c = 0; c < 8; c++) sum = _mm256_add_epi32(sum, dot_u8(s.q[c], load32(xq + 32 * c), s.scale[c]));
        const float dx = x.scale[at];
        acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(s.d * dx), acc[i]);
        const __m256i sums = load32(x.sums.data() + at * 16);
        const __m256 weighted = _mm256_cvtepi32_ps(_mm256_madd_epi16(sums, s.sum_coefficients));
        offset[i] = _mm256_fmadd_ps(weighted, _mm256_set1_ps(s.dmin * dx), offset[i]);
      }
    }
    for (int i = 0; i < M; i++)
      out[size_t(i) * ldo + j] = hsum(_mm256_sub_ps(acc[i], offset[i])) + (bias ? bias[j] : 0.0f);
  }
}

#if defined(__AVX512BW__)
// Q4_K and Q5_K on 512-bit vectors, two chunks per instruction. A 64-byte load of the quants
// holds chunks 4r and 4r + 2 in its low nibbles and 4r + 1 and 4r + 3 in its high ones, so x is
// stored with its chunks in that order (interleave_pairs), and each pair's scales are spread
// over the two halves of one vector.
constexpr int kPairOrder[8] = {0, 2, 1, 3, 4, 6, 5, 7};

void interleave_pairs(QuantizedActivations& x) {
  int8_t natural[256];
  for (size_t b = 0; b < x.q.size() / 256; b++) {
    int8_t* q = x.q.data() + b * 256;
    std::copy(q, q + 256, natural);
    for (int slot = 0; slot < 8; slot++) std::copy_n(natural + 32 * kPairOrder[slot], 32, q + 32 * slot);
  }
}

// Lanes 0-15 hold a, lanes 16-31 b (as int16 indices for permutexvar).
inline __m512i pair_index(int a, int b) {
  return _mm512_inserti64x4(_mm512_set1_epi16(int16_t(a)), _mm256_set1_epi16(int16_t(b)), 1);
}

template <int M, bool Five>
void dot_rows_q45k_512(const QuantizedActivations& x, const uint8_t* w, const float* bias, float* out, size_t ldo,
                       int jb, int je) {
  const int blocks = x.k / 256, bytes = Five ? 176 : 144;
  const __m512i mask = _mm512_set1_epi8(0x0f), one = _mm512_set1_epi8(1);
  const __m512i index[4] = {pair_index(0, 2), pair_index(1, 3), pair_index(4, 6), pair_index(5, 7)};
  for (int j = jb; j < je; j++) {
    const uint8_t* row = w + size_t(j) * blocks * bytes;
    __m512 acc[M];
    __m256 offset[M];
    for (int i = 0; i < M; i++) {
      acc[i] = _mm512_setzero_ps();
      offset[i] = _mm256_setzero_ps();
    }
    for (int sb = 0; sb < blocks; sb++) {
      const uint8_t* b = row + size_t(sb) * bytes;
      const float d = half(b), dmin = half(b + 2);
      const uint32_t a = word(b + 4), m = word(b + 8), c = word(b + 12);
      const uint64_t scale_bytes = uint64_t(a & 0x3f3f3f3f) | uint64_t((c & 0x0f0f0f0f) | ((a >> 2) & 0x30303030))
                                                                  << 32;
      const uint64_t min_bytes = uint64_t(m & 0x3f3f3f3f) | uint64_t(((c >> 4) & 0x0f0f0f0f) | ((m >> 2) & 0x30303030))
                                                                << 32;
      const __m512i scales16 = _mm512_cvtepu8_epi16(_mm256_castsi128_si256(_mm_cvtsi64_si128(int64_t(scale_bytes))));
      const __m128i mins = _mm_cvtsi64_si128(int64_t(min_bytes));
      const __m256i min_coefficients = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mins, mins));
      __m512i q[4], scale[4];
      const uint8_t* qs = b + (Five ? 48 : 16);
      for (int r = 0; r < 2; r++) {
        const __m512i packed = _mm512_loadu_si512(qs + 64 * r);
        q[2 * r] = _mm512_and_si512(packed, mask);
        q[2 * r + 1] = _mm512_and_si512(_mm512_srli_epi16(packed, 4), mask);
      }
      if (Five) {
        const __m512i high = _mm512_broadcast_i64x4(load32(b + 16));
        for (int t = 0; t < 4; t++) {
          // Chunk c's fifth bits are bit c of each qh byte; index[t] names the pair's chunks.
          const __m512i bits = _mm512_and_si512(_mm512_srlv_epi16(high, index[t]), one);
          q[t] = _mm512_or_si512(q[t], _mm512_slli_epi16(bits, 4));
        }
      }
      for (int t = 0; t < 4; t++) scale[t] = _mm512_permutexvar_epi16(index[t], scales16);
      for (int i = 0; i < M; i++) {
        const size_t at = size_t(i) * blocks + sb;
        const int8_t* xq = x.q.data() + at * 256;
        __m512i sum = _mm512_setzero_si512();
        for (int t = 0; t < 4; t++) {
          const __m512i xv = _mm512_loadu_si512(xq + 64 * t);
          sum = _mm512_add_epi32(sum, _mm512_madd_epi16(_mm512_maddubs_epi16(q[t], xv), scale[t]));
        }
        const float dx = x.scale[at];
        acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_set1_ps(d * dx), acc[i]);
        const __m256i sums = load32(x.sums.data() + at * 16);
        const __m256 weighted = _mm256_cvtepi32_ps(_mm256_madd_epi16(sums, min_coefficients));
        offset[i] = _mm256_fmadd_ps(weighted, _mm256_set1_ps(dmin * dx), offset[i]);
      }
    }
    for (int i = 0; i < M; i++)
      out[size_t(i) * ldo + j] = _mm512_reduce_add_ps(acc[i]) - hsum(offset[i]) + (bias ? bias[j] : 0.0f);
  }
}
#endif

}  // namespace

void quantize_activations(const float* x, int m, int k, vt_dtype type, QuantizedActivations& out) {
  const int block = vt::quant::block_elements(type);
  out.m = m;
  out.k = k;
  out.block = block;
  out.q.resize(size_t(m) * k);
  out.scale.resize(size_t(m) * k / block);
  out.sums.resize(size_t(m) * k / 16);
  for (size_t b = 0; b < size_t(m) * k / block; b++) {
    const float* v = x + b * block;
    const float d = vt::quant::max_abs(v, block) / 127.0f;
    const float id = d > 0.0f ? 1.0f / d : 0.0f;
    out.scale[b] = d;
    for (int i = 0; i < block; i++)
      out.q[b * block + i] = int8_t(vt::quant::clamp(vt::quant::nearest(v[i] * id), -127, 127));
  }
  for (size_t g = 0; g < out.sums.size(); g++) {
    int sum = 0;
    for (int i = 0; i < 16; i++) sum += out.q[g * 16 + i];
    out.sums[g] = int16_t(sum);
  }
#if defined(__AVX512BW__)
  if (type == VT_Q4_K || type == VT_Q5_K) interleave_pairs(out);
#endif
}

namespace {

template <int M>
void dot_rows(const QuantizedActivations& x, const uint8_t* w, vt_dtype type, const float* bias, float* out, size_t ldo,
              int jb, int je) {
  switch (type) {
    case VT_Q8_0:
      return dot_rows_32<VT_Q8_0, M>(x, w, bias, out, ldo, jb, je);
    case VT_Q4_0:
      return dot_rows_32<VT_Q4_0, M>(x, w, bias, out, ldo, jb, je);
    case VT_Q4_1:
      return dot_rows_32<VT_Q4_1, M>(x, w, bias, out, ldo, jb, je);
    case VT_Q5_0:
      return dot_rows_32<VT_Q5_0, M>(x, w, bias, out, ldo, jb, je);
    case VT_Q5_1:
      return dot_rows_32<VT_Q5_1, M>(x, w, bias, out, ldo, jb, je);
#if defined(__AVX512BW__)
    case VT_Q4_K:
      return dot_rows_q45k_512<M, false>(x, w, bias, out, ldo, jb, je);
    case VT_Q5_K:
      return dot_rows_q45k_512<M, true>(x, w, bias, out, ldo, jb, je);
#endif
    default:
      return dot_rows_k<M>(x, w, type, bias, out, ldo, jb, je);
  }
}

}  // namespace

void quant_dot_columns(const QuantizedActivations& x, const uint8_t* w, vt_dtype type, const float* bias, float* out,
                       size_t ldo, int jb, int je) {
  static_assert(kQuantDotMaxRows == 8, "one instance per m below");
  switch (x.m) {
    case 1:
      return dot_rows<1>(x, w, type, bias, out, ldo, jb, je);
    case 2:
      return dot_rows<2>(x, w, type, bias, out, ldo, jb, je);
    case 3:
      return dot_rows<3>(x, w, type, bias, out, ldo, jb, je);
    case 4:
      return dot_rows<4>(x, w, type, bias, out, ldo, jb, je);
    case 5:
      return dot_rows<5>(x, w, type, bias, out, ldo, jb, je);
    case 6:
      return dot_rows<6>(x, w, type, bias, out, ldo, jb, je);
    case 7:
      return dot_rows<7>(x, w, type, bias, out, ldo, jb, je);
    default:
      return dot_rows<8>(x, w, type, bias, out, ldo, jb, je);
  }
}

}  // namespace vt::cpu
