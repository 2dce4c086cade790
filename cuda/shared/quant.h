// The quantized weight formats of vllm_ts.h (llama.cpp's block layouts: Q8_0, Q4_0, Q4_1, Q5_0,
// Q5_1, Q4_K, Q5_K, Q6_K), one block at a time: the layout, the dequantizer and the quantizer of each. One
// definition for the CPU library, the CUDA kernels and the emulation; src/reference/quant.ts is
// the TypeScript reference they are tested against, bit for bit.
//
// A row of k weights is k / block_elements(type) consecutive blocks; every format's blocks are
// byte arrays (no struct padding), with f16 scales stored little-endian.
//
// The quantizers are this project's own (round to nearest, scales from the block's range); they
// write blocks any GGUF reader decodes. Products are kept apart from the additions that follow
// them (VT_MUL): a fused multiply-add would round differently from the reference.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "vllm_ts.h"

#if defined(__CUDACC__)
#define VT_QUANT_INLINE __host__ __device__ __forceinline__
#else
#define VT_QUANT_INLINE inline
#endif

namespace vt::quant {

#if defined(__CUDA_ARCH__)
VT_QUANT_INLINE float mul(float a, float b) { return __fmul_rn(a, b); }
#else
VT_QUANT_INLINE float mul(float a, float b) { return a * b; }
#endif

VT_QUANT_INLINE bool is_quantized(vt_dtype d) { return d >= VT_Q8_0 && d <= VT_Q5_1; }

// Elements per block.
VT_QUANT_INLINE constexpr int block_elements(vt_dtype d) {
  return d == VT_Q4_K || d == VT_Q5_K || d == VT_Q6_K ? 256 : 32;
}

// Bytes per block.
VT_QUANT_INLINE constexpr int block_bytes(vt_dtype d) {
  switch (d) {
    case VT_Q8_0:
      return 34;
    case VT_Q4_0:
      return 18;
    case VT_Q4_1:
      return 20;
    case VT_Q5_0:
      return 22;
    case VT_Q5_1:
      return 24;
    case VT_Q4_K:
      return 144;
    case VT_Q5_K:
      return 176;
    default:
      return 210;  // VT_Q6_K
  }
}

// ---- f16 scales ------------------------------------------------------------------------------

VT_QUANT_INLINE float half_to_float(const uint8_t* p) {
  const uint32_t h = uint32_t(p[0]) | (uint32_t(p[1]) << 8);
  const uint32_t sign = (h & 0x8000u) << 16, exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0) {
    // Zero or subnormal: m * 2^-24, exact in f32.
    float f = float(mantissa) * (1.0f / 16777216.0f);
    return sign ? -f : f;
  }
  bits = exponent == 0x1f ? sign | 0x7f800000u | (mantissa << 13) : sign | ((exponent + 112) << 23) | (mantissa << 13);
  float f;
  __builtin_memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even, as vt_convert does.
VT_QUANT_INLINE void float_to_half(float f, uint8_t* p) {
  uint32_t bits;
  __builtin_memcpy(&bits, &f, 4);
  const uint32_t sign = (bits >> 16) & 0x8000u, exponent = (bits >> 23) & 0xffu, mantissa = bits & 0x7fffffu;
  uint32_t h;
  if (exponent == 0xff) {
    h = sign | 0x7c00u | (mantissa ? 0x200u | (mantissa >> 13) : 0u);
  } else {
    const int e = int(exponent) - 127 + 15;
    if (e >= 0x1f) {
      h = sign | 0x7c00u;
    } else if (e <= 0) {
      const int shift = 14 - e;
      if (shift > 24) {
        h = sign;
      } else {
        const uint32_t significand = mantissa | 0x800000u, rem = significand & ((1u << shift) - 1u);
        const uint32_t half = 1u << (shift - 1), q = significand >> shift;
        h = sign | (rem > half || (rem == half && (q & 1u)) ? q + 1 : q);
      }
    } else {
      const uint32_t q = (uint32_t(e) << 10) | (mantissa >> 13), rem = mantissa & 0x1fffu;
      h = sign | (rem > 0x1000u || (rem == 0x1000u && (q & 1u)) ? q + 1 : q);
    }
  }
  p[0] = uint8_t(h & 0xff);
  p[1] = uint8_t(h >> 8);
}

// The larger and smaller of a running bound and a value; a NaN value leaves the bound, as fmaxf
// and fminf do. Plain comparisons, because g++ calls libm's fmaxf and fminf (their NaN rules
// block inlining), which took a third of quantizing a model on load.
VT_QUANT_INLINE float larger(float bound, float v) { return v > bound ? v : bound; }
VT_QUANT_INLINE float smaller(float bound, float v) { return v < bound ? v : bound; }

VT_QUANT_INLINE float max_abs(const float* x, int n) {
  float m = 0.0f;
  for (int i = 0; i < n; i++) m = larger(m, fabsf(x[i]));
  return m;
}

// Nearest integer, ties to even (as the reference's roundHalfEven).
VT_QUANT_INLINE int nearest(float v) { return int(rintf(v)); }

VT_QUANT_INLINE int clamp(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

// ---- K-quant sub-block scales: 8 pairs of 6-bit (scale, min) in 12 bytes -----------------------

VT_QUANT_INLINE void k_scale_min(const uint8_t* s, int j, int* scale, int* min) {
  if (j < 4) {
    *scale = s[j] & 63;
    *min = s[j + 4] & 63;
  } else {
    *scale = (s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4);
    *min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

VT_QUANT_INLINE void k_pack_scale_mins(const int* scales, const int* mins, uint8_t* s) {
  for (int j = 0; j < 12; j++) s[j] = 0;
  for (int j = 0; j < 8; j++) {
    if (j < 4) {
      s[j] = uint8_t(scales[j]);
      s[j + 4] = uint8_t(mins[j]);
    } else {
      s[j + 4] = uint8_t((scales[j] & 0xf) | ((mins[j] & 0xf) << 4));
      s[j - 4] |= uint8_t((scales[j] >> 4) << 6);
      s[j] |= uint8_t((mins[j] >> 4) << 6);
    }
  }
}

// ---- dequantizers: one block to block_elements(type) floats ------------------------------------

VT_QUANT_INLINE void dequantize_q8_0(const uint8_t* b, float* y) {
  const float d = half_to_float(b);
  for (int i = 0; i < 32; i++) y[i] = mul(d, float(int8_t(b[2 + i])));
}

VT_QUANT_INLINE void dequantize_q4_0(const uint8_t* b, float* y) {
  const float d = half_to_float(b);
  for (int i = 0; i < 16; i++) {
    y[i] = mul(d, float((b[2 + i] & 0xf) - 8));
    y[i + 16] = mul(d, float((b[2 + i] >> 4) - 8));
  }
}

// Q4_1, Q5_0 and Q5_1: 32 values, element i's low 4 bits in the low nibble of byte i (i < 16) or
// the high nibble of byte i - 16, Q5's fifth bit in bit i of a 32-bit word; Q5_0 is centred on 16
// (value = d * (q - 16)), the others have a min (value = d * q + m).
VT_QUANT_INLINE int q5_high_bits_at(vt_dtype type) { return type == VT_Q5_0 ? 2 : 4; }

VT_QUANT_INLINE int q451_quant(vt_dtype type, const uint8_t* b, int e) {
  const int qs = type == VT_Q4_1 ? 4 : type == VT_Q5_0 ? 6 : 8;
  int q = (e < 16 ? b[qs + e] & 0xf : b[qs + e - 16] >> 4);
  if (type != VT_Q4_1) {
    const uint8_t* qh = b + q5_high_bits_at(type);
    q |= ((qh[e / 8] >> (e % 8)) & 1) << 4;
  }
  return q;
}

VT_QUANT_INLINE float dequantize_q451_element(vt_dtype type, const uint8_t* b, int e) {
  const float d = half_to_float(b);
  const int q = q451_quant(type, b, e);
  if (type == VT_Q5_0) return mul(d, float(q - 16));
  return mul(d, float(q)) + half_to_float(b + 2);
}

// Q4_K and Q5_K: 8 sub-blocks of 32, value = d * scale_j * q - dmin * min_j, q of 4 (or 5) bits.
VT_QUANT_INLINE void dequantize_q45_k(const uint8_t* b, float* y, bool five) {
  const float d = half_to_float(b), dmin = half_to_float(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* qs = b + (five ? 48 : 16);
  for (int j = 0; j < 8; j++) {
    int scale, min;
    k_scale_min(scales, j, &scale, &min);
    const float ds = mul(d, float(scale)), dm = mul(dmin, float(min));
    // Sub-blocks 2p and 2p+1 share 32 bytes: low nibbles, then high nibbles.
    const uint8_t* q = qs + 32 * (j / 2);
    const int shift = (j & 1) * 4;
    for (int l = 0; l < 32; l++) {
      int v = (q[l] >> shift) & 0xf;
      if (five) v |= ((qh[l] >> j) & 1) << 4;
      y[32 * j + l] = mul(ds, float(v)) - dm;
    }
  }
}

// Q6_K: 16 sub-blocks of 16 with int8 scales; q of 6 bits (low 4 in ql, high 2 in qh), minus 32.
VT_QUANT_INLINE void dequantize_q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = half_to_float(b + 208);
  for (int half = 0; half < 2; half++) {
    for (int l = 0; l < 32; l++) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = mul(mul(d, float(sc[is + 0])), float(q1));
      y[l + 32] = mul(mul(d, float(sc[is + 2])), float(q2));
      y[l + 64] = mul(mul(d, float(sc[is + 4])), float(q3));
      y[l + 96] = mul(mul(d, float(sc[is + 6])), float(q4));
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

VT_QUANT_INLINE void dequantize_block(vt_dtype type, const uint8_t* b, float* y) {
  switch (type) {
    case VT_Q8_0:
      return dequantize_q8_0(b, y);
    case VT_Q4_0:
      return dequantize_q4_0(b, y);
    case VT_Q4_1:
    case VT_Q5_0:
    case VT_Q5_1:
      for (int e = 0; e < 32; e++) y[e] = dequantize_q451_element(type, b, e);
      return;
    case VT_Q4_K:
      return dequantize_q45_k(b, y, false);
    case VT_Q5_K:
      return dequantize_q45_k(b, y, true);
    default:
      return dequantize_q6_k(b, y);
  }
}

// Chunk c (values 32c..32c+31) of a row of blocks, the same values dequantize_block writes: every
// format's chunk shares its scales, so a kernel thread can take a chunk whole.
VT_QUANT_INLINE void dequantize_chunk(vt_dtype type, const uint8_t* row, int c, float* y) {
  if (block_elements(type) == 32) return dequantize_block(type, row + size_t(c) * block_bytes(type), y);
  const uint8_t* b = row + size_t(c / 8) * block_bytes(type);
  const int j = c % 8;
  if (type == VT_Q6_K) {
    const int h = j / 4, g = j % 4;
    const float d = half_to_float(b + 208);
    const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192 + 8 * h + 2 * g);
    const float d0 = mul(d, float(sc[0])), d1 = mul(d, float(sc[1]));
    for (int l = 0; l < 32; l++) {
      const int low = (b[64 * h + l + 32 * (g & 1)] >> (4 * (g / 2))) & 0xf;
      const int high = (b[128 + 32 * h + l] >> (2 * g)) & 3;
      y[l] = mul(l < 16 ? d0 : d1, float((low | (high << 4)) - 32));
    }
    return;
  }
  const bool five = type == VT_Q5_K;
  int scale, min;
  k_scale_min(b + 4, j, &scale, &min);
  const float ds = mul(half_to_float(b), float(scale)), dm = mul(half_to_float(b + 2), float(min));
  const uint8_t* q = b + (five ? 48 : 16) + 32 * (j / 2);
  for (int l = 0; l < 32; l++) {
    int v = (q[l] >> ((j & 1) * 4)) & 0xf;
    if (five) v |= ((b[16 + l] >> j) & 1) << 4;
    y[l] = mul(ds, float(v)) - dm;
  }
}

// Values q..q+7 of a row of blocks (q a multiple of 8), the same values dequantize_block writes.
// Eight aligned values never straddle a scale (the smallest sub-block is Q6_K's 16), so a kernel
// staging 8-value chunks decodes each chunk's scales once.
VT_QUANT_INLINE void dequantize_eight(vt_dtype type, const uint8_t* row, int q, float* y) {
  const uint8_t* b = row + size_t(q / block_elements(type)) * block_bytes(type);
  const int e0 = q % block_elements(type);
  switch (type) {
    case VT_Q8_0: {
      const float d = half_to_float(b);
      for (int l = 0; l < 8; l++) y[l] = mul(d, float(int8_t(b[2 + e0 + l])));
      return;
    }
    case VT_Q4_0: {
      const float d = half_to_float(b);
      for (int l = 0; l < 8; l++) {
        const int e = e0 + l;
        y[l] = mul(d, float((e < 16 ? b[2 + e] & 0xf : b[2 + e - 16] >> 4) - 8));
      }
      return;
    }
    case VT_Q4_1:
    case VT_Q5_0:
    case VT_Q5_1:
      for (int l = 0; l < 8; l++) y[l] = dequantize_q451_element(type, b, e0 + l);
      return;
    case VT_Q4_K:
    case VT_Q5_K: {
      const bool five = type == VT_Q5_K;
      const int j = e0 / 32, l0 = e0 % 32;
      int scale, min;
      k_scale_min(b + 4, j, &scale, &min);
      const float ds = mul(half_to_float(b), float(scale)), dm = mul(half_to_float(b + 2), float(min));
      const uint8_t* qs = b + (five ? 48 : 16) + 32 * (j / 2);
      for (int l = 0; l < 8; l++) {
        int v = (qs[l0 + l] >> ((j & 1) * 4)) & 0xf;
        if (five) v |= ((b[16 + l0 + l] >> j) & 1) << 4;
        y[l] = mul(ds, float(v)) - dm;
      }
      return;
    }
    default: {  // VT_Q6_K
      const int h = e0 / 128, g = (e0 % 128) / 32, l0 = e0 % 32;
      const float ds = mul(half_to_float(b + 208), float(int8_t(b[192 + 8 * h + l0 / 16 + 2 * g])));
      for (int l = 0; l < 8; l++) {
        const int low = (b[64 * h + l0 + l + 32 * (g & 1)] >> (4 * (g / 2))) & 0xf;
        const int high = (b[128 + 32 * h + l0 + l] >> (2 * g)) & 3;
        y[l] = mul(ds, float((low | (high << 4)) - 32));
      }
      return;
    }
  }
}

// ---- quantizers: block_elements(type) floats to one block -------------------------------------

// Symmetric: d = max|x| / 127, q = nearest(x / d).
VT_QUANT_INLINE void quantize_q8_0(const float* x, uint8_t* b) {
  const float d = max_abs(x, 32) / 127.0f;
  const float id = d > 0.0f ? 1.0f / d : 0.0f;
  float_to_half(d, b);
  for (int i = 0; i < 32; i++) b[2 + i] = uint8_t(int8_t(clamp(nearest(mul(x[i], id)), -127, 127)));
}

// Symmetric around 8: d = max|x| / 7, q = nearest(x / d) + 8 in [1, 15] (0 stays unused).
VT_QUANT_INLINE void quantize_q4_0(const float* x, uint8_t* b) {
  const float d = max_abs(x, 32) / 7.0f;
  const float id = d > 0.0f ? 1.0f / d : 0.0f;
  float_to_half(d, b);
  for (int i = 0; i < 16; i++) {
    const int lo = clamp(nearest(mul(x[i], id)) + 8, 0, 15), hi = clamp(nearest(mul(x[i + 16], id)) + 8, 0, 15);
    b[2 + i] = uint8_t(lo | (hi << 4));
  }
}

// Q5_0: symmetric around 16, d = max|x| / 15. Q4_1 and Q5_1: the range [min, max] in 15 or 31
// steps, against the f16 d and min the decoder reads.
VT_QUANT_INLINE void quantize_q451(vt_dtype type, const float* x, uint8_t* b) {
  const int qs = type == VT_Q4_1 ? 4 : type == VT_Q5_0 ? 6 : 8;
  int q[32];
  if (type == VT_Q5_0) {
    const float d = max_abs(x, 32) / 15.0f;
    const float id = d > 0.0f ? 1.0f / d : 0.0f;
    float_to_half(d, b);
    for (int i = 0; i < 32; i++) q[i] = clamp(nearest(mul(x[i], id)) + 16, 0, 31);
  } else {
    const int levels = type == VT_Q4_1 ? 15 : 31;
    float lo = x[0], hi = x[0];
    for (int i = 1; i < 32; i++) {
      lo = smaller(lo, x[i]);
      hi = larger(hi, x[i]);
    }
    float_to_half((hi - lo) / float(levels), b);
    float_to_half(lo, b + 2);
    const float dq = half_to_float(b), mq = half_to_float(b + 2);
    for (int i = 0; i < 32; i++) q[i] = dq > 0.0f ? clamp(nearest((x[i] - mq) / dq), 0, levels) : 0;
  }
  uint32_t high = 0;
  for (int i = 0; i < 16; i++) b[qs + i] = uint8_t((q[i] & 0xf) | ((q[i + 16] & 0xf) << 4));
  for (int i = 0; i < 32; i++) high |= uint32_t(q[i] >> 4) << i;
  if (type != VT_Q4_1)
    for (int j = 0; j < 4; j++) b[q5_high_bits_at(type) + j] = uint8_t(high >> (8 * j));
}

// Q4_K / Q5_K: per sub-block of 32, the range [min(x, 0), max(x)] in `levels` steps; the
// sub-blocks' scales and mins quantized to 6 bits against the super-block's d and dmin; then each
// q against the scale and min it will be decoded with.
VT_QUANT_INLINE void quantize_q45_k(const float* x, uint8_t* b, bool five) {
  const int levels = five ? 31 : 15;
  float scale[8], min[8], max_scale = 0.0f, max_min = 0.0f;
  for (int j = 0; j < 8; j++) {
    float lo = 0.0f, hi = 0.0f;
    for (int l = 0; l < 32; l++) {
      lo = smaller(lo, x[32 * j + l]);
      hi = larger(hi, x[32 * j + l]);
    }
    scale[j] = (hi - lo) / float(levels);
    min[j] = -lo;
    max_scale = larger(max_scale, scale[j]);
    max_min = larger(max_min, min[j]);
  }
  const float d = max_scale / 63.0f, dmin = max_min / 63.0f;
  float_to_half(d, b);
  float_to_half(dmin, b + 2);
  // Quantize against the f16 values the decoder reads.
  const float dq = half_to_float(b), dminq = half_to_float(b + 2);
  int scales[8], mins[8];
  for (int j = 0; j < 8; j++) {
    scales[j] = dq > 0.0f ? clamp(nearest(scale[j] / dq), 0, 63) : 0;
    mins[j] = dminq > 0.0f ? clamp(nearest(min[j] / dminq), 0, 63) : 0;
  }
  k_pack_scale_mins(scales, mins, b + 4);
  uint8_t* qh = b + 16;
  uint8_t* qs = b + (five ? 48 : 16);
  if (five)
    for (int l = 0; l < 32; l++) qh[l] = 0;
  for (int l = 0; l < 128; l++) qs[l] = 0;
  for (int j = 0; j < 8; j++) {
    const float ds = mul(dq, float(scales[j])), dm = mul(dminq, float(mins[j]));
    for (int l = 0; l < 32; l++) {
      const int q = ds > 0.0f ? clamp(nearest((x[32 * j + l] + dm) / ds), 0, levels) : 0;
      qs[32 * (j / 2) + l] |= uint8_t((q & 0xf) << ((j & 1) * 4));
      if (five) qh[l] |= uint8_t((q >> 4) << j);
    }
  }
}

// Q6_K: per sub-block of 16, a signed scale max|x| / 31 quantized to int8 against d = max scale /
// 127; q = nearest(x / (d * scale)) + 32 in [0, 63].
VT_QUANT_INLINE void quantize_q6_k(const float* x, uint8_t* b) {
  float scale[16], max_scale = 0.0f;
  for (int j = 0; j < 16; j++) {
    scale[j] = max_abs(x + 16 * j, 16) / 31.0f;
    max_scale = larger(max_scale, scale[j]);
  }
  const float d = max_scale / 127.0f;
  float_to_half(d, b + 208);
  const float dq = half_to_float(b + 208);
  int8_t* sc = reinterpret_cast<int8_t*>(b + 192);
  for (int j = 0; j < 16; j++) sc[j] = int8_t(dq > 0.0f ? clamp(nearest(scale[j] / dq), 0, 127) : 0);
  uint8_t* ql = b;
  uint8_t* qh = b + 128;
  for (int l = 0; l < 128; l++) ql[l] = 0;
  for (int l = 0; l < 64; l++) qh[l] = 0;
  for (int i = 0; i < 256; i++) {
    const float ds = mul(dq, float(sc[i / 16]));
    const int q = ds > 0.0f ? clamp(nearest(x[i] / ds) + 32, 0, 63) : 32;
    // Element i = 128 h + 32 g + l (g in 0..3) sits in ql[64 h + l + 32 (g & 1)], nibble g / 2,
    // and in qh[32 h + l], bits 2g..2g+1: the inverse of dequantize_q6_k.
    const int h = i / 128, g = (i % 128) / 32, l = i % 32;
    ql[64 * h + l + 32 * (g & 1)] |= uint8_t((q & 0xf) << (4 * (g / 2)));
    qh[32 * h + l] |= uint8_t((q >> 4) << (2 * g));
  }
}

VT_QUANT_INLINE void quantize_block(vt_dtype type, const float* x, uint8_t* b) {
  switch (type) {
    case VT_Q8_0:
      return quantize_q8_0(x, b);
    case VT_Q4_0:
      return quantize_q4_0(x, b);
    case VT_Q4_1:
    case VT_Q5_0:
    case VT_Q5_1:
      return quantize_q451(type, x, b);
    case VT_Q4_K:
      return quantize_q45_k(x, b, false);
    case VT_Q5_K:
      return quantize_q45_k(x, b, true);
    default:
      return quantize_q6_k(x, b);
  }
}

}  // namespace vt::quant

namespace vt {

// Bytes of `count` elements of `d`, a dtype or (whole blocks of) a quantized format.
inline size_t storage_bytes(vt_dtype d, size_t count) {
  if (!quant::is_quantized(d)) return count * (d == VT_F32 ? 4 : 2);
  return count / size_t(quant::block_elements(d)) * size_t(quant::block_bytes(d));
}

}  // namespace vt
