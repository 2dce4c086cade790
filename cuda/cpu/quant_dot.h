// vt_matmul's decode path for quantized weights on the CPU, as llama.cpp computes it: the few
// rows of x are quantized to int8 per block of the weight format's size (32 for Q8_0 and Q4_0,
// 256 for the K-quants; a scale per block: max |x| / 127), and each 32-value chunk of a weight
// row is unpacked to bytes and multiplied with them in integers (maddubs, then madd by the
// sub-block's scale), so a K-quant's 256 values need one float multiply-add, and w is read once,
// in its quantized size. src/reference/quant.ts's quantizeActivations is the reference of the x
// side. It needs AVX2 (the builds target the machine, or x86-64-v3 for the GPU kit); Q4_K and Q5_K
// take 512-bit vectors where AVX-512 is there.
#pragma once

#include <cstdint>
#include <vector>

#include "vllm_ts.h"

namespace vt::cpu {

// Rows of x quantized to int8 per block, laid out for one weight format's kernel.
struct QuantizedActivations {
  int m = 0, k = 0, block = 0;
  std::vector<int8_t> q;      // [m, k], in the order the format's kernel reads (see quant_dot.cpp)
  std::vector<float> scale;   // [m, k / block]
  std::vector<int16_t> sums;  // [m, k / 16]: the sum of q over each 16 values (|sum| <= 2032)
};

// x: f32 [m, k], for weights of `type` (k a multiple of its block).
void quantize_activations(const float* x, int m, int k, vt_dtype type, QuantizedActivations& out);

// out[i, j] = sum_q w[j, q] * x[i, q] (+ bias[j]) for i < m and jb <= j < je; w holds n rows of
// `type` blocks; out rows are ldo apart.
void quant_dot_columns(const QuantizedActivations& x, const uint8_t* w, vt_dtype type, const float* bias, float* out,
                       size_t ldo, int jb, int je);

// The largest m this path takes: past it, dequantizing w into f32 tiles and running the f32
// kernels costs less than re-reading the unpacked chunks for every row of x.
constexpr int kQuantDotMaxRows = 8;

}  // namespace vt::cpu
