// The quantized weight formats' side of vt_convert and vt_matmul (quant.cu), called by those ops
// once their arguments are checked.
#pragma once

#include "common.cuh"

namespace vt::gpu {

// One of dst_dtype and src_dtype is quantized, the other not; count is whole blocks.
vt_status convert_quantized(vt_context* ctx, void* dst, vt_dtype dst_dtype, const void* src, vt_dtype src_dtype,
                            size_t count);

// Quantized w must start aligned for the kernels' word loads (quant_dot.cuh's weight_alignment).
vt_status check_quantized_weights(const char* op, const void* w, vt_dtype weight_dtype);

// weight_dtype is quantized; x, bias and out are act_dtype.
vt_status quantized_matmul(vt_context* ctx, const void* x, const void* w, const void* bias, void* out, int32_t m,
                           int32_t n, int32_t k, vt_dtype act_dtype, vt_dtype weight_dtype);

}  // namespace vt::gpu
