// x quantized to int8 per block (quantized_activations.h): the block's largest magnitude on
// simd.h's vectors, then 16 values per step on 256-bit ones.
#include "quantized_activations.h"

#include <immintrin.h>

#include "quant.h"
#include "simd.h"

namespace vt::cpu {
namespace {

inline int sum_lanes(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1)));
}

// One block of x (`block` values, a multiple of 16) to int8 as quant.h's max_abs, nearest and
// clamp do it (the products v * id rounded to nearest even by the conversion), 16 values at a
// time, with the sum of each 16.
void quantize_block(const float* v, int block, int8_t* q, float* scale, int16_t* sums) {
  simd::vec top = simd::zero();
  for (int i = 0; i < block; i += simd::W) {
    const simd::vec x = simd::load(v + i);
    top = simd::max(top, simd::max(x, simd::sub(simd::zero(), x)));  // |x|
  }
  const float d = simd::reduce_max(top) / 127.0f;
  const __m256 id = _mm256_set1_ps(d > 0.0f ? 1.0f / d : 0.0f);
  *scale = d;
  const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
  for (int i = 0; i < block; i += 16) {
    const auto to_int = [&](int at) {
      const __m256i r = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(v + at), id));
      return _mm256_min_epi32(_mm256_max_epi32(r, lo), hi);
    };
    const __m256i a = to_int(i), b = to_int(i + 8);
    sums[i / 16] = int16_t(sum_lanes(_mm256_add_epi32(a, b)));
    // packs works within 128-bit lanes: put a's and b's halves back in order before the bytes.
    const __m256i words = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xd8);
    const __m128i bytes = _mm_packs_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + i), bytes);
  }
}

}  // namespace

void quantize_activations(const float* x, int m, int k, vt_dtype type, QuantizedActivations& out, int threads) {
  const int block = vt::quant::block_elements(type);
  out.m = m;
  out.k = k;
  out.block = block;
  out.q.resize(size_t(m) * k);
  out.scale.resize(size_t(m) * k / block);
  out.sums.resize(size_t(m) * k / 16);
  const int64_t blocks = int64_t(m) * k / block;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t b = 0; b < blocks; b++)
    quantize_block(x + b * block, block, out.q.data() + b * block, out.scale.data() + b,
                   out.sums.data() + b * (block / 16));
}

}  // namespace vt::cpu
