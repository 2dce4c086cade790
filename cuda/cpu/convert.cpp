// Element-wise tensor conversion between storage dtypes, and the deterministic uniform fill used
// for random-weight models. Both are memory-bound loops over a flat index, split statically.
#include <algorithm>
#include <string>

#include "common.h"
#include "op.h"

namespace {

// murmur3's 32-bit finalizer.
inline uint32_t fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  h *= 0xC2B2AE35u;
  h ^= h >> 16;
  return h;
}

// Exactly the formula of vllm_ts.h, so every backend and the TypeScript reference agree bit for
// bit: (u * 2 - 1) is exact in f32, leaving the product with scale as the only rounding.
inline float uniform_value(uint64_t i, uint32_t seed, float scale) {
  uint32_t lo = uint32_t(i), hi = uint32_t(i >> 32);
  uint32_t h = fmix32(fmix32(lo ^ seed) + hi * 0x9E3779B9u + 0x85EBCA6Bu);
  float u = float(h >> 8) * (1.0f / 16777216.0f);
  return (u * 2.0f - 1.0f) * scale;
}

}  // namespace

extern "C" {

vt_status vt_convert(vt_context* ctx, void* dst, vt_dtype dst_dtype, const void* src, vt_dtype src_dtype,
                     size_t count) {
  const char* op = "vt_convert";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_storage_dtype(op, "dst_dtype", dst_dtype));
  VT_TRY(vt::check_storage_dtype(op, "src_dtype", src_dtype));
  if (count == 0) return vt::ok();
  VT_REQUIRE(dst && src, op, "dst or src is NULL");
  VT_REQUIRE(count <= SIZE_MAX / 4, op, "count is too large");
  if (dst_dtype == src_dtype)
    return vt_memcpy(ctx, dst, src, count * vt::dtype_bytes(src_dtype), VT_COPY_DEVICE_TO_DEVICE);
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
  VT_TRY(vt::check_storage_dtype(op, "dtype", dtype));
  if (count == 0) return vt::ok();
  VT_REQUIRE(dst, op, "dst is NULL");
  vt::with_dtype(dtype, [&](auto D) {
#pragma omp parallel for num_threads(vt::threads_for(ctx, count)) schedule(static)
    for (size_t i = 0; i < count; i++) vt::store(dst, D, i, uniform_value(i, seed, scale));
  });
  return vt::ok();
}

}  // extern "C"
