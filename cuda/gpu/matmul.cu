// vt_matmul on the GPU: out[m, n] = x[m, k] . w[n, k]^T + bias[n], f32 accumulation. Dispatch:
//   act == weight in {f16, bf16} (the model's path):
//     cuBLAS when the context found it (blas.cu), else
//     m <= 8 (decode) and 16-byte aligned rows: gemv.cuh, bound by streaming w from HBM once;
//     otherwise:                                gemm_tensor_core.cuh, wmma tiles.
//   act f32 with weight f32, f16 or bf16 (the tests, f32 models):
//     m <= 8 and aligned rows: gemv.cuh; otherwise gemm_simt.cuh (FP32 FMA tiles).
//   quantized weights (any act dtype): quant.cu.
//   anything else: VT_ERR_UNSUPPORTED.
// Nothing is allocated here, so the op can be captured in a CUDA graph.
#include <type_traits>

#include "blas.cuh"
#include "checks.h"
#include "common.cuh"
#include "gemm_simt.cuh"
#include "gemm_tensor_core.cuh"
#include "gemv.cuh"
#include "quant.cuh"
#include "vec.cuh"

extern "C" vt_status vt_matmul(vt_context* ctx, const void* x, const void* w, const void* bias, void* out, int32_t m,
                               int32_t n, int32_t k, vt_dtype act_dtype, vt_dtype weight_dtype) {
  const char* op = "vt_matmul";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_matmul_args(op, x, w, out, m, n, k, weight_dtype));
  if (vt::quant::is_quantized(weight_dtype)) {
    VT_TRY(vt::check_storage_dtype(op, "act_dtype", act_dtype));
    return m == 0 ? vt::ok() : vt::gpu::quantized_matmul(ctx, x, w, bias, out, m, n, k, act_dtype, weight_dtype);
  }
  VT_TRY(vt::gpu::check_act_storage(op, act_dtype, "weight_dtype", weight_dtype));
  if (m == 0) return vt::ok();

  if (act_dtype != VT_F32 && ctx->blas)
    return vt::gpu::blas_matmul(ctx->blas, ctx->stream, x, w, bias, out, m, n, k, act_dtype);

  namespace mm = vt::gpu::matmul;
  vt::gpu::with_act_storage(act_dtype, weight_dtype, [&](auto act_tag, auto weight_tag) {
    using TX = typename decltype(act_tag)::type;
    using TW = typename decltype(weight_tag)::type;
    const auto* xt = static_cast<const TX*>(x);
    const auto* wt = static_cast<const TW*>(w);
    const auto* bt = static_cast<const TW*>(bias);
    auto* ot = static_cast<TX*>(out);
    if (mm::gemv_fits<TX, TW>(x, w, m, k)) {
      mm::launch_gemv(ctx->stream, xt, wt, bt, ot, m, n, k);
    } else if constexpr (std::is_same_v<TX, float>) {
      mm::launch_gemm_simt(ctx->stream, xt, wt, bt, ot, m, n, k);
    } else {
      static_assert(std::is_same_v<TX, TW>, "16-bit activations come with weights of their dtype");
      mm::launch_gemm_tensor_core(ctx->stream, xt, wt, bt, ot, m, n, k);
    }
  });
  return vt::gpu::launch_status(op);
}

// The kernels read quantized blocks as stored (quant.cu): nothing to rearrange.
extern "C" vt_status vt_pack_weights(vt_context* ctx, void* w, int32_t n, int32_t k, vt_dtype dtype) {
  const char* op = "vt_pack_weights";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  return vt::check_pack_weights_args(op, w, n, k, dtype);
}
