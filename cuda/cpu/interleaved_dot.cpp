// vt_matmul with quantized weights in the interleaved layout (interleaved_quant.h) on the CPU, at
// every m: x quantized to int8 per block (quantized_activations.h), each group of 16 weight rows
// multiplied with up to 4 rows of x at a time, 16 output columns per vector. Per 4 quant bytes of
// the 16 rows: one load, the format's unpacking (masks and shifts, shared by the rows of x), then
// per row of x a broadcast of its 4 int8 values and one dpbusd. Integer sums are scaled per
// sub-block in integers (the K-quants' 6- and 8-bit scales) and per block in f32. With int8
// products and the scales applied per 16 columns this beats dequantizing w to f32 for the f32
// kernels at every m, prefill included (4 times the multiply-adds per instruction).
//
// Unsigned weights make the arithmetic exact: dpbusd multiplies unsigned by signed bytes, so the
// offsets (Q4_0's 8, Q5_0's 16, Q6_K's 32, Q8_0's 128 after interleaving) and the mins come back
// through the sums of x per 16 values, which quantize_activations keeps. No step overflows int32:
// a K-quant super-block's sum is at most 256 x 63 x 127 x 128.
#include <algorithm>
#include <vector>

#include "interleaved_quant.h"
#include "lanes16.h"
#include "quant.h"

// GCC 12 flags (as -Wuninitialized) the undefined pass-through operand of AVX-512 intrinsics; a
// false positive, as simd.h silences too.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace vt::cpu::interleaved {
namespace {

using namespace vt::cpu::lanes;

// Rows i0.. of quantized x, as plain pointers the kernels keep in registers.
struct XRows {
  const int8_t* q;
  const float* scales;
  const int16_t* sums;
  size_t k, blocks, groups16;  // per row: values, blocks, 16-value sums
  // Whether the kernel prefetches the weights: only the first pass over a group of rows (rows 0..3
  // of x) reads them from memory; the later ones find them in cache.
  bool prefetch;

  XRows(const QuantizedActivations& x, int i0)
      : q(x.q.data() + size_t(i0) * size_t(x.k)),
        scales(x.scale.data() + size_t(i0) * size_t(x.k / x.block)),
        sums(x.sums.data() + size_t(i0) * size_t(x.k / 16)),
        k(size_t(x.k)),
        blocks(size_t(x.k / x.block)),
        groups16(size_t(x.k / 16)),
        prefetch(i0 == 0) {}

  // Four int8 values of row i from position `at`, for dot4.
  const int8_t* four(int i, int at) const { return q + size_t(i) * k + size_t(at); }
  float scale(int i, int block) const { return scales[size_t(i) * blocks + size_t(block)]; }
  int sum16(int i, int g) const { return sums[size_t(i) * groups16 + size_t(g)]; }
  // The sums of 16 values g and g + 1 as the two int16 halves of a word (for madd16).
  int32_t sum16_pair(int i, int g) const { return load_word(sums + size_t(i) * groups16 + size_t(g)); }
};

constexpr int kStep = 4 * kGroupRows;  // bytes of a slab of 4 bytes per row

// The weights stream from memory once per call, and these kernels spend more cycles per byte than
// a copy: the hardware prefetchers alone left Q4_K decode reading 38 GB/s where bf16 reads 45. So
// the kernels ask for the bytes kPrefetchBytes ahead of those they read (Q4_K decode: 1.5x).
// Prefetches never fault: those past the last block are harmless.
constexpr size_t kPrefetchBytes = 4096;

// Prefetches the `count` bytes kPrefetchBytes after `at`: a whole block of the 32-value formats, a
// quarter of a K-quant block (a few KiB for 16 rows) at a time.
inline void prefetch_ahead(const uint8_t* at, size_t count) {
  for (size_t line = 0; line < count; line += 64) __builtin_prefetch(at + kPrefetchBytes + line, 0, 0);
}

template <int M>
void dot_q8_0(const XRows& x, const uint8_t* group, int count, F32x16* out) {
  constexpr Layout kLayout = q8_0_layout();
  constexpr int kD = kLayout.start(0, kGroupRows), kQuants = kLayout.start(1, kGroupRows);
  constexpr size_t kBlockBytes = kLayout.start(kLayout.count, kGroupRows);
  for (int i = 0; i < M; i++) out[i] = zero_f();
  for (int b = 0; b < count; b++) {
    const uint8_t* p = group + size_t(b) * kBlockBytes;
    if (x.prefetch) prefetch_ahead(p, kBlockBytes);
    const F32x16 d = halves(p + kD);
    I32x16 w[8];
    for (int s = 0; s < 8; s++) w[s] = load(p + kQuants + kStep * s);
    for (int i = 0; i < M; i++) {
      // Two chains of dot products, so the next starts before the last one's latency has passed.
      I32x16 chain[2] = {zero(), zero()};
      for (int s = 0; s < 8; s++) chain[s % 2] = dot4_wide(chain[s % 2], w[s], x.four(i, 32 * b + 4 * s));
      const I32x16 dot = chain[0] + chain[1] - splat(128 * (x.sum16(i, 2 * b) + x.sum16(i, 2 * b + 1)));
      out[i] = fma(to_float(dot), d * x.scale(i, b), out[i]);
    }
  }
}

// The fifth bits of 4 consecutive values of each row: bits 0-3 of each lane's `bits` to bit 4 of
// its 4 bytes (the multiply puts bit t at 8t + 4 and nothing else there or carrying into it).
inline I32x16 spread_fifth_bits(I32x16 bits) { return ((bits & splat(0xf)) * splat(0x02040810)) & splat_bytes(0x10); }

// The 32-value formats with 4-bit quants: Q4_0 (value d (q - 8)), Q4_1 (d q + m), Q5_0 (a fifth
// bit, d (q - 16)) and Q5_1 (a fifth bit, d q + m).
template <vt_dtype T, int M>
void dot_q4_x(const XRows& x, const uint8_t* group, int count, F32x16* out) {
  constexpr bool kMin = T == VT_Q4_1 || T == VT_Q5_1, kFifth = T == VT_Q5_0 || T == VT_Q5_1;
  constexpr int kOffset = T == VT_Q4_0 ? 8 : T == VT_Q5_0 ? 16 : 0;
  constexpr Layout kLayout = q4_x_layout(kMin, kFifth);
  constexpr int kD = kLayout.start(0, kGroupRows), kMinAt = kLayout.start(1, kGroupRows);
  constexpr int kHigh = kLayout.start(kLayout.count - 5, kGroupRows),
                kQuants = kLayout.start(kLayout.count - 4, kGroupRows);
  constexpr size_t kBlockBytes = kLayout.start(kLayout.count, kGroupRows);
  const I32x16 low_nibbles = splat_bytes(0x0f);
  for (int i = 0; i < M; i++) out[i] = zero_f();
  for (int b = 0; b < count; b++) {
    const uint8_t* p = group + size_t(b) * kBlockBytes;
    if (x.prefetch) prefetch_ahead(p, kBlockBytes);
    const F32x16 d = halves(p + kD);
    I32x16 low[4], high[4];
    const I32x16 bits = kFifth ? load(p + kHigh) : zero();
    for (int s = 0; s < 4; s++) {
      const I32x16 raw = load(p + kQuants + kStep * s);
      low[s] = raw & low_nibbles;
      high[s] = shift_right16(raw, 4) & low_nibbles;
      if (kFifth) {
        low[s] = low[s] | spread_fifth_bits(shift_right32(bits, 4 * s));
        high[s] = high[s] | spread_fifth_bits(shift_right32(bits, 16 + 4 * s));
      }
    }
    for (int i = 0; i < M; i++) {
      I32x16 chain[2] = {zero(), zero()};
      for (int s = 0; s < 4; s++) {
        chain[0] = dot4(chain[0], low[s], x.four(i, 32 * b + 4 * s));
        chain[1] = dot4(chain[1], high[s], x.four(i, 32 * b + 16 + 4 * s));
      }
      I32x16 dot = chain[0] + chain[1];
      const int sum = x.sum16(i, 2 * b) + x.sum16(i, 2 * b + 1);
      if (kOffset) dot = dot - splat(kOffset * sum);
      const float dx = x.scale(i, b);
      out[i] = fma(to_float(dot), d * dx, out[i]);
      if (kMin) out[i] = fma(halves(p + kMinAt), splat_f(dx * float(sum)), out[i]);
    }
  }
}

// Bit j of each byte of `bits` to bit 4 (Q5_K's fifth bits of chunk j).
inline I32x16 fifth_bits_of_chunk(I32x16 bits, int j) {
  return (j < 4 ? shift_left16(bits, 4 - j) : shift_right16(bits, j - 4)) & splat_bytes(0x10);
}

// Q4_K and Q5_K (Fifth): value = d * scale_j * q - dmin * min_j per 32-value chunk j.
template <bool Fifth, int M>
void dot_q45_k(const XRows& x, const uint8_t* group, int count, F32x16* out) {
  constexpr Layout kLayout = q45_k_layout(Fifth);
  constexpr int kD = kLayout.start(0, kGroupRows), kDmin = kLayout.start(1, kGroupRows);
  constexpr int kScales = kLayout.start(2, kGroupRows), kHigh = kLayout.start(14, kGroupRows);
  constexpr int kQuants = kLayout.start(Fifth ? 22 : 14, kGroupRows);
  constexpr size_t kBlockBytes = kLayout.start(kLayout.count, kGroupRows);
  const I32x16 low_nibbles = splat_bytes(0x0f);
  const __m128i six_bits = _mm_set1_epi8(0x3f), four_bits = _mm_set1_epi8(0x0f), top_two = _mm_set1_epi8(0x30);
  F32x16 offset[M];
  for (int i = 0; i < M; i++) out[i] = offset[i] = zero_f();
  for (int sb = 0; sb < count; sb++) {
    const uint8_t* p = group + size_t(sb) * kBlockBytes;
    // The 8 sub-blocks' 6-bit scales and mins of the 16 rows (quant.h's k_scale_min, 16 rows at
    // a time): bytes 0-3 hold scales 0-3 and their top bits for 4-7, bytes 4-7 mins likewise,
    // bytes 8-11 the low four bits of scales 4-7 (low nibble) and mins 4-7 (high nibble).
    __m128i a[12];
    for (int t = 0; t < 12; t++) a[t] = load_bytes16(p + kScales + kGroupRows * t);
    __m128i scale_bytes[8], min_bytes[8];
    for (int j = 0; j < 4; j++) {
      scale_bytes[j] = _mm_and_si128(a[j], six_bits);
      min_bytes[j] = _mm_and_si128(a[j + 4], six_bits);
      scale_bytes[j + 4] =
          _mm_or_si128(_mm_and_si128(a[j + 8], four_bits), _mm_and_si128(_mm_srli_epi16(a[j], 2), top_two));
      min_bytes[j + 4] = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(a[j + 8], 4), four_bits),
                                      _mm_and_si128(_mm_srli_epi16(a[j + 4], 2), top_two));
    }
    I32x16 sums[M], mins[M];
    for (int i = 0; i < M; i++) sums[i] = mins[i] = zero();
    // Chunks 2q and 2q + 1 come from the low and high nibbles of the same 8 slabs.
    for (int q = 0; q < 4; q++) {
      if (x.prefetch) prefetch_ahead(p + q * kBlockBytes / 4, kBlockBytes / 4);
      // One row of x alone has too few independent chains to cover dpbusd's latency: it takes two
      // per chunk (steps alternating), summed after.
      constexpr int kChains = M == 1 ? 2 : 1;
      I32x16 even[M][kChains], odd[M][kChains];
      for (int i = 0; i < M; i++)
        for (int c = 0; c < kChains; c++) even[i][c] = odd[i][c] = zero();
      for (int s = 0; s < 8; s++) {
        const I32x16 raw = load(p + kQuants + kStep * (8 * q + s));
        I32x16 low = raw & low_nibbles, high = shift_right16(raw, 4) & low_nibbles;
        if (Fifth) {
          const I32x16 bits = load(p + kHigh + kStep * s);
          low = low | fifth_bits_of_chunk(bits, 2 * q);
          high = high | fifth_bits_of_chunk(bits, 2 * q + 1);
        }
        const int c = s % kChains;
        for (int i = 0; i < M; i++) {
          even[i][c] = dot4(even[i][c], low, x.four(i, 256 * sb + 64 * q + 4 * s));
          odd[i][c] = dot4(odd[i][c], high, x.four(i, 256 * sb + 64 * q + 32 + 4 * s));
        }
      }
      const I32x16 even_scale = widen_u8(scale_bytes[2 * q]), odd_scale = widen_u8(scale_bytes[2 * q + 1]);
      for (int i = 0; i < M; i++) {
        I32x16 even_sum = even[i][0], odd_sum = odd[i][0];
        for (int c = 1; c < kChains; c++) {
          even_sum = even_sum + even[i][c];
          odd_sum = odd_sum + odd[i][c];
        }
        sums[i] = sums[i] + even_sum * even_scale + odd_sum * odd_scale;
      }
    }
    for (int j = 0; j < 8; j++) {
      I32x16 min_pair = widen_u8(min_bytes[j]);
      min_pair = min_pair | shift_left32(min_pair, 16);
      for (int i = 0; i < M; i++) mins[i] = mins[i] + madd16(min_pair, x.sum16_pair(i, 16 * sb + 2 * j));
    }
    const F32x16 d = halves(p + kD), dmin = halves(p + kDmin);
    for (int i = 0; i < M; i++) {
      const float dx = x.scale(i, sb);
      out[i] = fma(to_float(sums[i]), d * dx, out[i]);
      offset[i] = fma(to_float(mins[i]), dmin * dx, offset[i]);
    }
  }
  for (int i = 0; i < M; i++) out[i] = out[i] - offset[i];
}

template <int M>
void dot_q6_k(const XRows& x, const uint8_t* group, int count, F32x16* out) {
  constexpr Layout kLayout = q6_k_layout();
  constexpr int kD = kLayout.start(0, kGroupRows), kScales = kLayout.start(1, kGroupRows);
  constexpr int kQuants = kLayout.start(17, kGroupRows);
  constexpr size_t kBlockBytes = kLayout.start(kLayout.count, kGroupRows);
  const I32x16 low_nibbles = splat_bytes(0x0f), low_two = splat_bytes(0x03), top_two = splat_bytes(0x30);
  for (int i = 0; i < M; i++) out[i] = zero_f();
  for (int sb = 0; sb < count; sb++) {
    const uint8_t* p = group + size_t(sb) * kBlockBytes;
    const auto scale_slab = [&](int t) { return load_bytes16(p + kScales + kGroupRows * t); };
    I32x16 sums[M];
    for (int i = 0; i < M; i++) sums[i] = zero();
    // Half h of the super-block holds chunks 4h..4h + 3; each 16-value half of a chunk has a scale.
    for (int h = 0; h < 2; h++)
      for (int half = 0; half < 2; half++) {
        if (x.prefetch) prefetch_ahead(p + (2 * h + half) * kBlockBytes / 4, kBlockBytes / 4);
        I32x16 chunk[4][M];
        for (int g = 0; g < 4; g++)
          for (int i = 0; i < M; i++) chunk[g][i] = zero();
        for (int s = 4 * half; s < 4 * half + 4; s++) {
          const uint8_t* slabs = p + kQuants + 3 * kStep * (8 * h + s);
          const I32x16 a = load(slabs), b = load(slabs + kStep), high = load(slabs + 2 * kStep);
          // Chunk g's low four bits: a's or b's low or high nibbles; its top two: bits 2g, 2g + 1 of high.
          const I32x16 w[4] = {
              (a & low_nibbles) | shift_left16(high & low_two, 4),
              (b & low_nibbles) | (shift_left16(high, 2) & top_two),
              (shift_right16(a, 4) & low_nibbles) | (high & top_two),
              (shift_right16(b, 4) & low_nibbles) | (shift_right16(high, 2) & top_two),
          };
          for (int g = 0; g < 4; g++)
            for (int i = 0; i < M; i++)
              chunk[g][i] = dot4(chunk[g][i], w[g], x.four(i, 256 * sb + 128 * h + 32 * g + 4 * s));
        }
        for (int g = 0; g < 4; g++) {
          const I32x16 scale = widen_s8(scale_slab(8 * h + 2 * g + half));
          for (int i = 0; i < M; i++) sums[i] = sums[i] + chunk[g][i] * scale;
        }
      }
    // The offset 32: sum over the 16 sub-blocks of scale x (the sum of x there), two at a time.
    I32x16 offsets[M];
    for (int i = 0; i < M; i++) offsets[i] = zero();
    for (int u = 0; u < 8; u++) {
      const I32x16 scale_pair = pairs_s8(scale_slab(2 * u), scale_slab(2 * u + 1));
      for (int i = 0; i < M; i++) offsets[i] = offsets[i] + madd16(scale_pair, x.sum16_pair(i, 16 * sb + 2 * u));
    }
    const F32x16 d = halves(p + kD);
    for (int i = 0; i < M; i++)
      out[i] = fma(to_float(sums[i] - shift_left32(offsets[i], 5)), d * x.scale(i, sb), out[i]);
  }
}

template <int M>
void dot_group(vt_dtype type, const XRows& x, const uint8_t* group, int count, F32x16* out) {
  switch (type) {
    case VT_Q8_0:
      return dot_q8_0<M>(x, group, count, out);
    case VT_Q4_0:
      return dot_q4_x<VT_Q4_0, M>(x, group, count, out);
    case VT_Q4_1:
      return dot_q4_x<VT_Q4_1, M>(x, group, count, out);
    case VT_Q5_0:
      return dot_q4_x<VT_Q5_0, M>(x, group, count, out);
    case VT_Q5_1:
      return dot_q4_x<VT_Q5_1, M>(x, group, count, out);
    case VT_Q4_K:
      return dot_q45_k<false, M>(x, group, count, out);
    case VT_Q5_K:
      return dot_q45_k<true, M>(x, group, count, out);
    default:  // VT_Q6_K
      return dot_q6_k<M>(x, group, count, out);
  }
}

// Rows i0..i0 + M - 1 of out, columns of one group of `rows` rows (16 wide in `group`).
template <int M>
void rows_of_group(vt_dtype type, const QuantizedActivations& x, int i0, const uint8_t* group, int rows, int count,
                   const float* bias, float* out, size_t ldo) {
  F32x16 result[M];
  dot_group<M>(type, XRows(x, i0), group, count, result);
  alignas(64) float columns[kGroupRows];
  for (int i = 0; i < M; i++) {
    store(columns, result[i]);
    float* to = out + size_t(i0 + i) * ldo;
    for (int r = 0; r < rows; r++) to[r] = columns[r] + (bias ? bias[r] : 0.0f);
  }
}

}  // namespace

void dot_groups(const QuantizedActivations& x, const uint8_t* w, vt_dtype type, int n, const float* bias, float* out,
                size_t ldo, int group_begin, int group_end) {
  const Layout& layout = layout_of(type);
  const int block_bytes = vt::quant::block_bytes(type), count = x.k / x.block;
  const size_t row_bytes = size_t(count) * size_t(block_bytes);
  thread_local std::vector<uint8_t> wide;
  for (int g = group_begin; g < group_end; g++) {
    const int j0 = g * kGroupRows, rows = std::min(kGroupRows, n - j0);
    // A short last group is widened to 16 rows once, so the kernels read every group alike.
    const uint8_t* group = w + size_t(j0) * row_bytes;
    if (rows < kGroupRows) {
      wide.resize(size_t(kGroupRows) * row_bytes);
      for (int b = 0; b < count; b++)
        widen_block(group + size_t(b) * size_t(rows) * size_t(block_bytes), rows, layout, block_bytes,
                    wide.data() + size_t(b) * kGroupRows * size_t(block_bytes));
      group = wide.data();
    }
    const float* group_bias = bias ? bias + j0 : nullptr;
    for (int i0 = 0; i0 < x.m; i0 += 4) {
      switch (std::min(4, x.m - i0)) {
        case 1:
          rows_of_group<1>(type, x, i0, group, rows, count, group_bias, out + j0, ldo);
          break;
        case 2:
          rows_of_group<2>(type, x, i0, group, rows, count, group_bias, out + j0, ldo);
          break;
        case 3:
          rows_of_group<3>(type, x, i0, group, rows, count, group_bias, out + j0, ldo);
          break;
        default:
          rows_of_group<4>(type, x, i0, group, rows, count, group_bias, out + j0, ldo);
      }
    }
  }
}

}  // namespace vt::cpu::interleaved
