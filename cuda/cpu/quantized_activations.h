// x quantized to int8 per block, as llama.cpp multiplies quantized weights: the rows of x in
// blocks of the weight format's size (32, or 256 for the K-quants), a scale per block
// (max |x| / 127), values rounded to nearest even, and the sum of each 16 values (for the weight
// formats' offsets and mins). src/reference/quant.ts's quantizeActivations is the reference.
// Needs AVX2 (the builds target the machine, or x86-64-v3 for the GPU kit).
#pragma once

#include <cstdint>
#include <vector>

#include "vllm_ts.h"

namespace vt::cpu {

struct QuantizedActivations {
  int m = 0, k = 0, block = 0;
  std::vector<int8_t> q;      // [m, k]
  std::vector<float> scale;   // [m, k / block]
  std::vector<int16_t> sums;  // [m, k / 16]: the sum of q over each 16 values (|sum| <= 2032)
};

// x: f32 [m, k], for weights of `type` (k a multiple of its block), on `threads` OpenMP threads.
void quantize_activations(const float* x, int m, int k, vt_dtype type, QuantizedActivations& out, int threads);

}  // namespace vt::cpu
