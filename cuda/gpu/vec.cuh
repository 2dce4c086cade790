// What the memory-bound element-wise and row kernels share: vector access to global memory (so
// a thread moves 16 bytes per instruction instead of 2 or 4), alignment tests that pick the
// vector path on the host, launch-shape helpers, and the activation/storage dtype pairs the CUDA
// backend implements.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>

#include "common.cuh"

namespace vt::gpu {

// ---- vector access ---------------------------------------------------------------------------

// N elements of T, aligned so that the compiler moves them with 16-byte (or the whole size when
// smaller) vector loads and stores. Reading through a pointer to Pack is the same access as
// reading the elements one by one, so it is free of aliasing tricks (and runs as a struct copy in
// the emulation).
template <class T, int N>
struct alignas(sizeof(T) * N >= 16 ? 16 : sizeof(T) * N) Pack {
  T v[N];
};

// Loads N elements at p (aligned to the Pack's alignment) as floats.
template <int N, class T>
__device__ __forceinline__ void load_floats(const T* p, float (&out)[N]) {
  VT_CHECK_ALIGNED(p, alignof(Pack<T, N>));
  const Pack<T, N> pack = *reinterpret_cast<const Pack<T, N>*>(p);
#pragma unroll
  for (int e = 0; e < N; e++) out[e] = to_float(pack.v[e]);
}

// Stores N floats at p (aligned to the Pack's alignment), rounded to T.
template <int N, class T>
__device__ __forceinline__ void store_floats(T* p, const float (&in)[N]) {
  Pack<T, N> pack;
#pragma unroll
  for (int e = 0; e < N; e++) pack.v[e] = from_float<T>(in[e]);
  VT_CHECK_ALIGNED(p, alignof(Pack<T, N>));
  *reinterpret_cast<Pack<T, N>*>(p) = pack;
}

// x as it reads back once stored as T (the identity for float).
template <class T>
__device__ __forceinline__ float round_to(float x) {
  return to_float(from_float<T>(x));
}

inline size_t address_of(const void* p) { return size_t(reinterpret_cast<uintptr_t>(p)); }
inline bool is_aligned(const void* p, size_t bytes) { return address_of(p) % bytes == 0; }

// The widest power-of-two unit (at most 16 bytes) that divides every value given: byte counts,
// strides and addresses of a raw copy, so the copy can move whole units.
inline size_t widest_unit(std::initializer_list<size_t> values) {
  size_t bits = 16;
  for (size_t v : values) bits |= v;
  return bits & (~bits + 1);  // lowest set bit
}

// ---- launch shapes ---------------------------------------------------------------------------

// Threads for a block that owns `items` parallel items of one row: enough warps to cover them,
// at most max_threads (a multiple of 32, as block reductions need).
inline int row_threads(size_t items, int max_threads) {
  size_t warps = (items + kWarpSize - 1) / kWarpSize;
  size_t threads = (warps == 0 ? 1 : warps) * kWarpSize;
  return threads > size_t(max_threads) ? max_threads : int(threads);
}

// Blocks for a grid-stride loop over `blocks_needed` blocks of work: one full wave of resident
// blocks of `threads` threads (2048 threads per SM) is enough to saturate memory bandwidth, and
// more only adds scheduling.
inline unsigned grid_blocks(const vt_context* ctx, size_t blocks_needed, int threads) {
  size_t per_sm = size_t(2048 / threads);
  size_t cap = size_t(ctx->num_sms > 0 ? ctx->num_sms : 1) * (per_sm == 0 ? 1 : per_sm);
  size_t blocks = blocks_needed < cap ? blocks_needed : cap;
  return unsigned(blocks == 0 ? 1 : blocks);
}

// ---- dtype combinations ----------------------------------------------------------------------

// An op whose activations and a storage tensor (weight, KV cache) have dtypes: f32 activations
// with any storage dtype, or 16-bit activations with the same storage dtype (the fast path:
// bf16 everywhere). Anything else is valid but not implemented here.
inline vt_status check_act_storage(const char* op, vt_dtype act, const char* storage_name, vt_dtype storage) {
  VT_TRY(check_storage_dtype(op, "act_dtype", act));
  VT_TRY(check_storage_dtype(op, storage_name, storage));
  if (act == VT_F32 || act == storage) return VT_OK;
  return fail(VT_ERR_UNSUPPORTED, std::string(op) + ": the CUDA backend takes " + dtype_name(act) +
                                      " activations only with " + storage_name + " " + dtype_name(act) + ", got " +
                                      dtype_name(storage));
}

// Calls f(TypeTag<A>{}, TypeTag<S>{}) for the pairs check_act_storage accepts, and only those,
// so each kernel is instantiated 5 times rather than 9.
template <class F>
void with_act_storage(vt_dtype act, vt_dtype storage, F&& f) {
  if (act == VT_F32) {
    with_dtype(storage, [&](auto s) { f(TypeTag<float>{}, s); });
  } else if (act == VT_F16) {
    f(TypeTag<__half>{}, TypeTag<__half>{});
  } else {
    f(TypeTag<__nv_bfloat16>{}, TypeTag<__nv_bfloat16>{});
  }
}

}  // namespace vt::gpu
