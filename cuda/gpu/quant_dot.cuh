// Dot products of quantized weights with activations quantized to int8, as llama.cpp's CUDA
// decode kernels (and this project's CPU kernels) compute them: the weights' integer values meet
// x's through dp4a, four products per instruction, and the scales are applied once per 16 or 32
// values. Dequantizing every weight to f32 instead costs a byte load, a conversion and an FMA
// per weight per row of x: about 300 instructions per 18 bytes of Q4_K, too many to issue at
// HBM bandwidth (an estimate by count; the GPU check measures it).
//
// x is quantized first (quantize_group: by the decode GEMV's blocks into shared memory, or by
// quantize_rows into the context's scratch for the experts' gather GEMV): per block of the
// weights' format (32 values, or 256 for the K-quants) the scale d = max |x| / 127 and
// q = round(x / d) in int8, exactly as src/reference/quant.ts's quantizeActivations; with each
// 16 values' sum of q, for the formats whose weights carry an offset (Q4_0's -8, a min, Q6_K's
// -32).
//
// A weight chunk (32 values that share their scales) is decoded into 8 words of 4 int8 values in
// order (WeightChunk), with a scale and an offset coefficient for each half of 16:
//   sum_l w_l x_l = d_x * sum_halves (scale_h * sum_l q_l qx_l + offset_h * sum_l qx_l).
// The words are read with the widest loads each format's alignment allows (its blocks' size:
// 16 bytes for Q4_K and Q5_K, 4 for Q4_1 and Q5_1, 2 for the others), so w must start aligned
// to that (checked on the host: weight_alignment).
#pragma once

#include <type_traits>

#include "common.cuh"
#include "quant.h"

namespace vt::gpu::quant_dot {

// Bytes a quantized row of w must start on for the word loads below.
inline size_t weight_alignment(vt_dtype format) {
  switch (format) {
    case VT_Q4_K:
    case VT_Q5_K:
      return 16;
    case VT_Q4_1:
    case VT_Q5_1:
      return 4;
    default:
      return 2;
  }
}

// ---- x, quantized ------------------------------------------------------------------------------

// Rows of x quantized for a format with blocks of `block` values: q [rows, k] int8, d [rows,
// k / block] f32, sums [rows, k / 16] int32 (each 16 values' sum of q).
struct QuantizedRows {
  int8_t* q;
  float* d;
  int32_t* sums;
  int k;
  int block;
  // q, then d, then sums, each part starting 16-byte aligned.
  __host__ __device__ static size_t q_bytes(int rows, int k) { return size_t(rows) * k; }
  __host__ __device__ static size_t d_bytes(int rows, int k, int block) {
    return (size_t(rows) * (k / block) * sizeof(float) + 15) / 16 * 16;
  }
  __host__ __device__ static size_t bytes(int rows, int k, int block) {
    return q_bytes(rows, k) + d_bytes(rows, k, block) + size_t(rows) * (k / 16) * sizeof(int32_t);
  }
  // Laid out in `memory`, 16-byte aligned (k is a multiple of 32, so q's part ends aligned).
  __host__ __device__ static QuantizedRows in(void* memory, int rows, int k, int block) {
    auto* bytes = static_cast<uint8_t*>(memory);
    auto* q = reinterpret_cast<int8_t*>(bytes);
    auto* d = reinterpret_cast<float*>(bytes + q_bytes(rows, k));
    auto* sums = reinterpret_cast<int32_t*>(bytes + q_bytes(rows, k) + d_bytes(rows, k, block));
    return {q, d, sums, k, block};
  }
};

// Eight consecutive values of x, a thread's share of a block of `block` values that block / 8
// consecutive lanes of a warp hold: quantized into q[0..7], the block's scale written to *d by
// its first lane, each 16 values' sum of q to sums[0] by the even lanes. Every lane of the warp
// must call it (shuffles); an inactive lane (past the end) passes zeros and writes nothing.
template <int kLanesPerBlock>
__device__ __forceinline__ void quantize_eight(const float (&values)[8], bool active, int8_t* q, float* d,
                                               int32_t* sums) {
  float amax = 0.0f;
#pragma unroll
  for (int v = 0; v < 8; v++) amax = quant::larger(amax, fabsf(values[v]));
#pragma unroll
  for (int offset = 1; offset < kLanesPerBlock; offset *= 2)
    amax = quant::larger(amax, __shfl_xor_sync(0xffffffffu, amax, offset));
  const float scale = amax / 127.0f;
  const float inverse = scale > 0.0f ? 1.0f / scale : 0.0f;
  int sum = 0;
  uint32_t packed[2] = {0, 0};
#pragma unroll
  for (int v = 0; v < 8; v++) {
    const int value = quant::clamp(__float2int_rn(quant::mul(values[v], inverse)), -127, 127);
    packed[v / 4] |= uint32_t(value & 0xff) << (8 * (v % 4));
    sum += value;
  }
  sum += __shfl_xor_sync(0xffffffffu, sum, 1);
  if (!active) return;
  VT_CHECK_ALIGNED(q, 8);
  *reinterpret_cast<uint2*>(q) = make_uint2(packed[0], packed[1]);
  const int lane = threadIdx.x % kWarpSize;
  if (lane % 2 == 0) *sums = sum;
  if (lane % kLanesPerBlock == 0) *d = scale;
}

// Group g of 8 values (g < groups) of rows of x [*, k], from column first of each row on, into
// `out` (its rows `columns` values wide: a tile of x, or all of it). Every lane of the warp calls
// it; the groups of a scale block are consecutive lanes.
template <int kLanesPerBlock, class TX>
__device__ __forceinline__ void quantize_group(const TX* __restrict__ x, int k, int first, int columns, int g,
                                               int groups, const QuantizedRows& out) {
  const bool active = g < groups;
  const int groups_per_row = columns / 8;
  const int row = active ? g / groups_per_row : 0, column = active ? g % groups_per_row * 8 : 0;
  float values[8];
  const TX* in = x + size_t(row) * k + first + column;
#pragma unroll
  for (int v = 0; v < 8; v++) values[v] = active ? to_float(in[v]) : 0.0f;
  const size_t at = size_t(row) * columns + column;
  quantize_eight<kLanesPerBlock>(values, active, out.q + at, out.d + at / out.block, out.sums + at / 16);
}

constexpr int kQuantizeThreads = 256;

// Rows of x quantized whole into `out` (its k is x's). Launch: grid ceil(rows * k / 8 / 256).
template <int kLanesPerBlock, class TX>
__global__ void quantize_rows_kernel(const TX* __restrict__ x, int rows, QuantizedRows out) {
  const int groups = rows * (out.k / 8);
  quantize_group<kLanesPerBlock>(x, out.k, 0, out.k, int(blockIdx.x * kQuantizeThreads + threadIdx.x), groups, out);
}

// Quantizes rows of x [rows, k] (TX) for weights of `format` into out; k is whole blocks.
template <class TX>
void quantize_rows(cudaStream_t stream, const TX* x, int rows, const QuantizedRows& out) {
  const unsigned grid = ceil_div(size_t(rows) * (out.k / 8), kQuantizeThreads);
  auto kernel = out.block == 32 ? &quantize_rows_kernel<4, TX> : &quantize_rows_kernel<32, TX>;
  VT_LAUNCH(kernel, grid, kQuantizeThreads, 0, stream, x, rows, out);
}

// ---- weights -----------------------------------------------------------------------------------

// A chunk of 32 weights: q holds values 4i..4i+3 in word i (int8 each, in order); value l of
// half h (16 values each) is w_l = scale[h] * q_l + offset[h].
struct WeightChunk {
  int32_t q[8];
  float scale[2];
  float offset[2];
};

// Little-endian 32-bit word at p, 2-byte aligned.
__device__ __forceinline__ uint32_t word_of_halves(const uint8_t* p) {
  VT_CHECK_ALIGNED(p, 2);
  const auto* h = reinterpret_cast<const uint16_t*>(p);
  return uint32_t(h[0]) | (uint32_t(h[1]) << 16);
}

// The f16 in the low 16 bits of a word.
__device__ __forceinline__ float low_half(uint32_t word) {
  const uint8_t bytes[2] = {uint8_t(word), uint8_t(word >> 8)};
  return quant::half_to_float(bytes);
}

// quant::k_scale_min on the 12 bytes of scales held in three words, without indexing an array
// by j (which would put it in local memory).
__device__ __forceinline__ void k_scale_min(uint32_t s0, uint32_t s1, uint32_t s2, int j, int& scale, int& min) {
  const auto byte = [&](int t) { return int(((t < 4 ? s0 : t < 8 ? s1 : s2) >> (8 * (t % 4))) & 0xffu); };
  if (j < 4) {
    scale = byte(j) & 63;
    min = byte(j + 4) & 63;
  } else {
    scale = (byte(j + 4) & 0xf) | ((byte(j - 4) >> 6) << 4);
    min = (byte(j + 4) >> 4) | ((byte(j) >> 6) << 4);
  }
}

// Four bits, each moved to bit 4 of its own byte (bit i to bit 8 i + 4).
__device__ __forceinline__ uint32_t spread_to_bit4(uint32_t bits) { return ((bits * 0x00204081u) & 0x01010101u) << 4; }

// Q4_0, Q5_0, Q4_1 and Q5_1 share a layout of nibbles: value e < 16 in the low nibble of byte e,
// value e >= 16 in the high nibble of byte e - 16; Q5's fifth bits in a 32-bit word qh.
__device__ __forceinline__ void split_nibbles(const uint32_t (&bytes)[4], int32_t (&q)[8]) {
#pragma unroll
  for (int i = 0; i < 4; i++) {
    q[i] = int32_t(bytes[i] & 0x0f0f0f0fu);
    q[i + 4] = int32_t((bytes[i] >> 4) & 0x0f0f0f0fu);
  }
}

__device__ __forceinline__ void add_fifth_bits(uint32_t qh, int32_t (&q)[8]) {
#pragma unroll
  for (int i = 0; i < 8; i++) q[i] |= int32_t(spread_to_bit4((qh >> (4 * i)) & 0xfu));
}

__device__ __forceinline__ void set_uniform(WeightChunk& chunk, float scale, float offset) {
  chunk.scale[0] = chunk.scale[1] = scale;
  chunk.offset[0] = chunk.offset[1] = offset;
}

// Chunk c (values 32c..32c+31) of a row of blocks of format F.
template <vt_dtype F>
__device__ __forceinline__ WeightChunk weight_chunk(const uint8_t* __restrict__ row, int c) {
  WeightChunk chunk;
  if constexpr (F == VT_Q8_0) {
    const uint8_t* b = row + size_t(c) * 34;
#pragma unroll
    for (int i = 0; i < 8; i++) chunk.q[i] = int32_t(word_of_halves(b + 2 + 4 * i));
    set_uniform(chunk, quant::half_to_float(b), 0.0f);
  } else if constexpr (F == VT_Q4_0 || F == VT_Q5_0) {
    constexpr bool five = F == VT_Q5_0;
    const uint8_t* b = row + size_t(c) * (five ? 22 : 18);
    const uint8_t* qs = b + (five ? 6 : 2);
    uint32_t bytes[4];
#pragma unroll
    for (int i = 0; i < 4; i++) bytes[i] = word_of_halves(qs + 4 * i);
    split_nibbles(bytes, chunk.q);
    if constexpr (five) add_fifth_bits(word_of_halves(b + 2), chunk.q);
    const float d = quant::half_to_float(b);
    set_uniform(chunk, d, quant::mul(d, five ? -16.0f : -8.0f));
  } else if constexpr (F == VT_Q4_1 || F == VT_Q5_1) {
    constexpr bool five = F == VT_Q5_1;
    const uint8_t* b = row + size_t(c) * (five ? 24 : 20);
    VT_CHECK_ALIGNED(b, 4);
    const auto* words = reinterpret_cast<const uint32_t*>(b);
    const uint32_t dm = words[0];
    uint32_t bytes[4];
#pragma unroll
    for (int i = 0; i < 4; i++) bytes[i] = words[(five ? 2 : 1) + i];
    split_nibbles(bytes, chunk.q);
    if constexpr (five) add_fifth_bits(words[1], chunk.q);
    set_uniform(chunk, low_half(dm), low_half(dm >> 16));
  } else if constexpr (F == VT_Q4_K || F == VT_Q5_K) {
    constexpr bool five = F == VT_Q5_K;
    const uint8_t* b = row + size_t(c / 8) * (five ? 176 : 144);
    const int j = c % 8;
    VT_CHECK_ALIGNED(b, 16);
    const uint4 head = *reinterpret_cast<const uint4*>(b);  // d and dmin, then 12 bytes of scales
    int scale, min;
    k_scale_min(head.y, head.z, head.w, j, scale, min);
    const auto* qs = reinterpret_cast<const uint4*>(b + (five ? 48 : 16) + 32 * (j / 2));
    const uint4 low = qs[0], high = qs[1];
    const uint32_t packed[8] = {low.x, low.y, low.z, low.w, high.x, high.y, high.z, high.w};
    const int shift = (j & 1) * 4;
#pragma unroll
    for (int i = 0; i < 8; i++) chunk.q[i] = int32_t((packed[i] >> shift) & 0x0f0f0f0fu);
    if constexpr (five) {
      const auto* qh = reinterpret_cast<const uint4*>(b + 16);
      const uint4 h0 = qh[0], h1 = qh[1];
      const uint32_t fifth[8] = {h0.x, h0.y, h0.z, h0.w, h1.x, h1.y, h1.z, h1.w};
#pragma unroll
      for (int i = 0; i < 8; i++) chunk.q[i] |= int32_t(((fifth[i] >> j) & 0x01010101u) << 4);
    }
    set_uniform(chunk, quant::mul(low_half(head.x), float(scale)), -quant::mul(low_half(head.x >> 16), float(min)));
  } else {
    static_assert(F == VT_Q6_K, "a quantized format");
    const uint8_t* b = row + size_t(c / 8) * 210;
    const int j = c % 8, h = j / 4, g = j % 4;
    const uint8_t* ql = b + 64 * h + 32 * (g & 1);
    const uint8_t* qh = b + 128 + 32 * h;
    const int low_shift = 4 * (g / 2), high_shift = 2 * g;
#pragma unroll
    for (int i = 0; i < 8; i++) {
      const uint32_t low = (word_of_halves(ql + 4 * i) >> low_shift) & 0x0f0f0f0fu;
      const uint32_t high = (word_of_halves(qh + 4 * i) >> high_shift) & 0x03030303u;
      chunk.q[i] = int32_t(low | (high << 4));
    }
    const float d = quant::half_to_float(b + 208);
    const auto* sc = reinterpret_cast<const int8_t*>(b + 192 + 8 * h + 2 * g);
#pragma unroll
    for (int half = 0; half < 2; half++) {
      chunk.scale[half] = quant::mul(d, float(sc[half]));
      chunk.offset[half] = quant::mul(chunk.scale[half], -32.0f);
    }
  }
  return chunk;
}

// sum_l w_l x_l over chunk c of row i of x.
__device__ __forceinline__ float chunk_dot(const WeightChunk& w, const QuantizedRows& x, int i, int c) {
  const size_t first = size_t(i) * x.k + 32 * size_t(c);
  VT_CHECK_ALIGNED(x.q + first, 16);
  VT_CHECK_ALIGNED(x.sums + first / 16, 8);
  const auto* q = reinterpret_cast<const int4*>(x.q + first);
  const int4 q0 = q[0], q1 = q[1];
  const int2 sums = *reinterpret_cast<const int2*>(x.sums + first / 16);
  int dot0 = __dp4a(w.q[0], q0.x, 0);
  dot0 = __dp4a(w.q[1], q0.y, dot0);
  dot0 = __dp4a(w.q[2], q0.z, dot0);
  dot0 = __dp4a(w.q[3], q0.w, dot0);
  int dot1 = __dp4a(w.q[4], q1.x, 0);
  dot1 = __dp4a(w.q[5], q1.y, dot1);
  dot1 = __dp4a(w.q[6], q1.z, dot1);
  dot1 = __dp4a(w.q[7], q1.w, dot1);
  const float d = x.d[first / x.block];
  const float halves =
      w.scale[0] * float(dot0) + w.offset[0] * float(sums.x) + w.scale[1] * float(dot1) + w.offset[1] * float(sums.y);
  return d * halves;
}

// Runs f with F bound to the format at compile time.
template <class Fn>
void with_format(vt_dtype format, Fn&& f) {
  switch (format) {
    case VT_Q8_0:
      return f(std::integral_constant<vt_dtype, VT_Q8_0>());
    case VT_Q4_0:
      return f(std::integral_constant<vt_dtype, VT_Q4_0>());
    case VT_Q4_1:
      return f(std::integral_constant<vt_dtype, VT_Q4_1>());
    case VT_Q5_0:
      return f(std::integral_constant<vt_dtype, VT_Q5_0>());
    case VT_Q5_1:
      return f(std::integral_constant<vt_dtype, VT_Q5_1>());
    case VT_Q4_K:
      return f(std::integral_constant<vt_dtype, VT_Q4_K>());
    case VT_Q5_K:
      return f(std::integral_constant<vt_dtype, VT_Q5_K>());
    default:
      return f(std::integral_constant<vt_dtype, VT_Q6_K>());
  }
}

}  // namespace vt::gpu::quant_dot
