// One vt_matmul call as the CPU kernels see it: out[m, n] = x[m, k] · w[n, k]^T + bias[n].
#pragma once

#include <cstddef>

namespace vt::cpu {

struct MatmulProblem {
  const float* x;
  const void* w;
  const float* bias;  // f32, or null
  float* out;
  int m, n, k;
  size_t ldo;            // elements between rows of out (n, or more when w is a slice of the columns)
  bool batch_invariant;  // every m on the dot path, whose rows do not depend on m
};

}  // namespace vt::cpu
