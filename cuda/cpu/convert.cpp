// Element-wise tensor conversion between storage dtypes, and the deterministic uniform fill used
// for random-weight models. Both are memory-bound loops over a flat index, split statically.
#include <algorithm>
#include <string>

#include "checks.h"
#include "common.h"
#include "op.h"
#include "uniform.h"

namespace {

// Dequantizes or quantizes block by block (one side is a quantized format, the other not).
void convert_blocks(vt_context* ctx, void* dst, vt_dtype dst_dtype, const void* src, vt_dtype src_dtype, size_t count) {
  const bool dequantize = vt::quant::is_quantized(src_dtype);
  const vt_dtype format = dequantize ? src_dtype : dst_dtype, plain = dequantize ? dst_dtype : src_dtype;
  const size_t elements = size_t(vt::quant::block_elements(format)), bytes = size_t(vt::quant::block_bytes(format));
  const size_t blocks = count / elements;
#pragma omp parallel for num_threads(vt::threads_for(ctx, count)) schedule(static)
  for (size_t b = 0; b < blocks; b++) {
    float values[256];
    if (dequantize) {
      vt::quant::dequantize_block(format, static_cast<const uint8_t*>(src) + b * bytes, values);
      for (size_t i = 0; i < elements; i++) vt::store(dst, plain, b * elements + i, values[i]);
    } else {
      for (size_t i = 0; i < elements; i++) values[i] = vt::load(src, plain, b * elements + i);
      vt::quant::quantize_block(format, values, static_cast<uint8_t*>(dst) + b * bytes);
    }
  }
}

}  // namespace

extern "C" {

vt_status vt_convert(vt_context* ctx, void* dst, vt_dtype dst_dtype, const void* src, vt_dtype src_dtype,
                     size_t count) {
  const char* op = "vt_convert";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_convert_args(op, dst, dst_dtype, src, src_dtype, count));
  VT_RECORD_QUEUE_OR_RUN(ctx, vt_convert, dst, dst_dtype, src, src_dtype, count);
  if (count == 0) return vt::ok();
  if (dst_dtype == src_dtype)
    return vt_memcpy(ctx, dst, src, vt::storage_bytes(src_dtype, count), VT_COPY_DEVICE_TO_DEVICE);
  if (vt::quant::is_quantized(src_dtype) || vt::quant::is_quantized(dst_dtype)) {
    convert_blocks(ctx, dst, dst_dtype, src, src_dtype, count);
    return vt::ok();
  }
  vt::with_dtype(src_dtype, [&](auto S) {
    vt::with_dtype(dst_dtype, [&](auto D) {
#pragma omp parallel for num_threads(vt::threads_for(ctx, count)) schedule(static)
      for (size_t i = 0; i < count; i++) vt::store(dst, D, i, vt::load(src, S, i));
    });
  });
  return vt::ok();
}

vt_status vt_fill_uniform(vt_context* ctx, void* dst, vt_dtype dtype, size_t count, uint32_t seed, float scale) {
  const char* op = "vt_fill_uniform";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_fill_uniform_args(op, dst, dtype, count));
  VT_RECORD_QUEUE_OR_RUN(ctx, vt_fill_uniform, dst, dtype, count, seed, scale);
  if (count == 0) return vt::ok();
  vt::with_dtype(dtype, [&](auto D) {
#pragma omp parallel for num_threads(vt::threads_for(ctx, count)) schedule(static)
    for (size_t i = 0; i < count; i++) vt::store(dst, D, i, vt::uniform_value(i, seed, scale));
  });
  return vt::ok();
}

}  // extern "C"
