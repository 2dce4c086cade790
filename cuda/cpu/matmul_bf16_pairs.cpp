// The packed matmul path on bf16 pairs, with AVX512-BF16 (matmul_bf16_pairs.h).
#include "matmul_bf16_pairs.h"

#include <cstring>

#include "float16.h"
#include "packed_gemm.h"

namespace vt::cpu::bf16 {

#if defined(__AVX512BF16__)
namespace {

namespace packed = vt::cpu::packed;

// bf16 w packed as pairs of k-values (packed_gemm.h's Panels): one 32-bit element holds k-values
// 2r and 2r + 1 of a column, so one vector is 16 columns' pairs, as vdpbf16ps takes them. An odd
// last k-value is paired with a zero.
struct Pairs {
  using X = uint16_t;
  static constexpr int kKPerRow = 2;
  static constexpr size_t kWeightBytes = 2;

  static __m512 weight_segment(const MatmulProblem& p, size_t at, int count) {
    const __mmask32 mask = count == 32 ? ~__mmask32(0) : __mmask32((1u << count) - 1);
    return _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(mask, static_cast<const uint16_t*>(p.w) + at));
  }

  // x rounded to bf16, each row whole pairs (a zero after an odd kc).
  static const uint16_t* x_rows(const MatmulProblem& p, int i, int rows, int kb, int kc, uint16_t* room, size_t& ldx) {
    const int stride = kc + (kc & 1);
    for (int r = 0; r < rows; r++) {
      const float* x = p.x + size_t(i + r) * p.k + kb;
      uint16_t* to = room + r * stride;
#pragma omp simd
      for (int q = 0; q < kc; q++) to[q] = vt::f32_to_bf16(x[q]);
      if (kc & 1) to[kc] = 0;
    }
    ldx = size_t(stride);
    return room;
  }

  static __m512 broadcast_x(const uint16_t* x) {
    int32_t pair;
    std::memcpy(&pair, x, sizeof pair);
    return _mm512_castsi512_ps(_mm512_set1_epi32(pair));
  }
  static __m512 multiply_add(__m512 a, __m512 b, __m512 acc) {
    return _mm512_dpbf16_ps(acc, (__m512bh)_mm512_castps_si512(a), (__m512bh)_mm512_castps_si512(b));
  }
};

}  // namespace

void pairs_columns(const MatmulProblem& p, int jb, int je) { packed::packed_columns<Pairs>(p, jb, je); }
#endif

}  // namespace vt::cpu::bf16
