// What the two paged-attention kernels (decode: paged_attention_decode.cuh, prefill chunks:
// paged_attention_prefill.cuh) share: the launch parameters, the walk from a logical key to its
// cache row through the block table, and the unpacking of 16-byte cache vectors into floats.
//
// Robustness rules every kernel follows, so that a step captured in a CUDA graph with padded
// launch bounds stays well defined: index arrays live on the device and are never checked on the
// host, so a negative block id masks its keys (never read), a sequence's own seq_lens and
// query_start_loc decide all its work (max_seq_len / max_query_len only size the grid: blocks past
// a sequence's end do nothing), and a query row that sees no key at all (a padding sequence with
// seq_len 0) gets zeros, never NaN.
#pragma once

#include <cstdint>
#include <cstring>

#include "common.cuh"

namespace vt::gpu::attention {

struct Params {
  void* out;
  const void* q;
  const void* k_cache;
  const void* v_cache;
  const int32_t* block_tables;
  const int32_t* seq_lens;
  const int32_t* query_start_loc;
  // Split-K decode partials (null when every sequence fits one partition):
  //   partial_out [num_seqs, num_q_heads, max_partitions, head_dim] (unnormalized),
  //   partial_max, partial_sum [num_seqs, num_q_heads, max_partitions].
  float* partial_out;
  float* partial_max;
  float* partial_sum;
  int32_t max_blocks_per_seq;
  int32_t num_q_heads, num_kv_heads, group;  // group = query heads per KV head
  int32_t head_dim, q_row_stride;
  int32_t block_size, block_shift;  // block_size == 1 << block_shift
  int32_t sliding_window;           // <= 0: none
  float scale;
  float soft_cap;          // 0: off; else scores become soft_cap * tanh(score / soft_cap)
  int32_t partition_size;  // decode: keys per split-K partition (a multiple of the decode chunk)
  int32_t max_partitions;  // decode: gridDim.x, the stride of the partials
  int32_t head_chunks;     // decode: blocks per KV head (the group's query heads, GT per block)
};

// Element offset of the cache row (one KV head) of logical key `key`, or -1 when its block id is
// negative (a table the caller left unfilled: the key is masked instead of read).
__device__ __forceinline__ int64_t cache_row(const Params& p, const int32_t* table, int key, int kv_head) {
  const int block = table[key >> p.block_shift];
  if (block < 0) return -1;
  const int64_t slot = int64_t(block) * p.block_size + (key & (p.block_size - 1));
  return (slot * p.num_kv_heads + kv_head) * p.head_dim;
}

// The keys a decode token (the last position of its sequence) attends to: [begin, end), and how
// many split-K partitions of partition_size they form (at least 1, so a sequence without keys
// still has one block that writes its zeros); the last partition ends at `end`. Both decode
// kernels derive the split from this.
// Gemma 2's attention soft-capping of a scaled score (the identity when soft_cap is 0).
__device__ __forceinline__ float soft_cap_score(const Params& p, float score) {
  return p.soft_cap > 0.f ? p.soft_cap * tanhf(score / p.soft_cap) : score;
}

struct DecodeRange {
  int begin, end, partitions;
};

__device__ __forceinline__ DecodeRange decode_range(const Params& p, int seq_len) {
  DecodeRange r;
  r.end = seq_len > 0 ? seq_len : 0;
  r.begin = p.sliding_window > 0 && r.end > p.sliding_window ? r.end - p.sliding_window : 0;
  const int keys = r.end - r.begin;
  r.partitions = keys <= p.partition_size ? 1 : (keys + p.partition_size - 1) / p.partition_size;
  // A max_seq_len below a real seq_len (a caller's bug) must not index past the partials: the
  // grid's last partition then takes the rest of the keys.
  if (r.partitions > p.max_partitions) r.partitions = p.max_partitions;
  return r;
}

// ---- 16-byte cache vectors -------------------------------------------------------------------

template <class To, class From>
__device__ __forceinline__ To bit_cast(const From& from) {
  static_assert(sizeof(To) == sizeof(From), "bit_cast between types of different sizes");
  To to;
  memcpy(&to, &from, sizeof(To));
  return to;
}

// 16 bytes of cache as its 4 (f32) or 8 (f16/bf16) values, in f32. Loading (`load16`) and
// unpacking are separate so a thread can have several loads in flight before it converts.
__device__ __forceinline__ uint4 load16(const void* p) {
  VT_CHECK_ALIGNED(p, 16);
  return *static_cast<const uint4*>(p);
}

__device__ __forceinline__ void unpack(const uint4& u, float (&f)[4], TypeTag<float>) {
  f[0] = __uint_as_float(u.x);
  f[1] = __uint_as_float(u.y);
  f[2] = __uint_as_float(u.z);
  f[3] = __uint_as_float(u.w);
}

// bf16 -> f32 is exact and is just the 16 bits shifted to the top of the word.
__device__ __forceinline__ void unpack(const uint4& u, float (&f)[8], TypeTag<__nv_bfloat16>) {
  const unsigned w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int i = 0; i < 4; i++) {
    f[2 * i] = __uint_as_float(w[i] << 16);
    f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
  }
}

__device__ __forceinline__ void unpack(const uint4& u, float (&f)[8], TypeTag<__half>) {
  const unsigned w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const float2 v = __half22float2(bit_cast<__half2>(w[i]));
    f[2 * i] = v.x;
    f[2 * i + 1] = v.y;
  }
}

__device__ __forceinline__ uint4 zero16() { return make_uint4(0u, 0u, 0u, 0u); }

// exp for softmax weights: the accurate expf where activations are f32 (the tests compare those
// to 1e-5), the fast hardware exponent where they are 16-bit (far below their rounding).
template <class ActT>
__device__ __forceinline__ float softmax_exp(float x) {
  if constexpr (sizeof(ActT) == 4) {
    return expf(x);
  } else {
    return __expf(x);
  }
}

}  // namespace vt::gpu::attention
