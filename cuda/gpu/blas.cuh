// The one matmul cuBLAS does for vt_matmul (blas.cu), when a context has cuBLAS (blas_open in
// common.cuh found it at run time and VT_DISABLE_CUBLAS is not set).
#pragma once

#include "common.cuh"

namespace vt::gpu {

// out[m, n] = x[m, k] . w[n, k]^T + bias[n] with x, w, bias and out all in `dtype` (f16 or bf16),
// f32 accumulation, enqueued on `stream`. bias may be null. Returns VT_ERR_DEVICE with cuBLAS's
// status in the message when cuBLAS refuses; launches nothing else than its kernels (no
// allocation: the workspace was set up in blas_open), so it can be captured in a graph.
vt_status blas_matmul(Blas* blas, cudaStream_t stream, const void* x, const void* w, const void* bias, void* out, int m,
                      int n, int k, vt_dtype dtype);

}  // namespace vt::gpu
