// bf16 weights multiply bf16 activations on the CPU: vt_matmul rounds x to bf16 (to nearest
// even) as it reads it, as llama.cpp does for bf16 weights and as vLLM's CPU backend holds its
// activations. Every product is then exact in f32, and AVX512-BF16's vdpbf16ps, which takes
// pairs of bf16 and adds two products per f32 lane, runs at twice the f32 FMA's rate (measured on
// Zen 5: 450 vs 230 GFLOP/s per core). Every variant rounds (simd::round_bf16 in the f32
// kernels), so all compute the same products and differ only in the order they are summed.
#pragma once

#include "matmul_problem.h"

namespace vt::cpu::bf16 {

#if defined(__AVX512BF16__)
// The packed path (packed_gemm.h) on pairs: columns [jb, je) of out, all rows, p.w in bf16.
void pairs_columns(const MatmulProblem& p, int jb, int je);
#endif

}  // namespace vt::cpu::bf16
