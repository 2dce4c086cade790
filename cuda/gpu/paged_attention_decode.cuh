// Decode attention (one query token per sequence) over the paged KV cache, and the split-K
// combine.
//
// Bound: memory. A decode reads each cached K and V row of its KV head once and does only
// 2 * GT multiply-adds per element (GT query heads share the row), so the kernel is designed to
// stream the cache at HBM bandwidth:
//  - GQA: a block owns up to GT = 8 query heads of one KV head, so every K/V row is loaded once
//    for all of them (groups above 8 take ceil(group / 8) blocks per KV head);
//  - split-K: a block owns one partition of partition_size keys (512 normally), so a long context
//    spreads over many blocks even at batch 1 (grid = partitions x KV heads x head chunks x
//    sequences); partials (max, sum, unnormalized out) are merged by the combine kernel with the
//    log-sum-exp rescaling. A sequence that fits one partition writes its output directly;
//  - loads: a token's row is read by LANES lanes, 16 bytes each (row = DPAD elements, e.g. 128
//    bf16 = 256 bytes = 16 lanes), so one warp instruction reads 32/LANES whole rows, every
//    32-byte sector fully used; each lane keeps kDecodeUnroll independent 16-byte loads in
//    flight (~32 KB per SM with 4 resident blocks of 4 warps, above the ~15-20 KB that covers HBM
//    latency on H100);
//  - math: each lane dots its 16-byte slice with the GT query heads (in registers), and the GT
//    partial sums are reduced across the token's lanes by a reduce-scatter butterfly (GT-1
//    shuffles plus log2(LANES/GT), instead of GT*log2(LANES)), leaving lane l with the full score
//    of head bitreverse(l). The scores of a chunk of kDecodeChunk keys live in shared memory;
//    softmax is exact within a chunk and online across chunks. The V pass mirrors the K pass:
//    each lane accumulates its slice for all GT heads in f32, and the token groups' accumulators
//    are summed through shared memory at the end.
// Instruction budget at GT = 8, bf16, head_dim 128: per 16 bytes of K ~100 instructions per lane
// (64 FMA, 8 unpack, 8+1 shuffles), per 16 bytes of V ~80, so a warp moves 2 x 512 bytes per
// ~180 issue slots: ~22 bytes/cycle/SM at full issue against the 11.6 needed for 80% of H100's
// 3.35 TB/s. GT <= 4 (most models) halves the math; GT = 1 is far from any compute limit.
//
// GT <= 4 (most models) runs the same two passes software-pipelined
// (paged_attention_decode_pipelined_kernel below): measured on an H200, the kernel above keeps
// loads in flight only while a warp waits for its current group of rows and none across a chunk's
// phase changes (table lookup, K pass, softmax, V pass), and streams the cache at ~58% of peak
// even at batch 256 x 32k; pipelined, 80% at GQA 4 (Llama-3.1-8B) and 93% at GQA 2 (Qwen3-0.6B).
// GT = 8 keeps the kernel above: the pipelined one does not fit its registers.
#pragma once

#include "paged_attention_common.cuh"

namespace vt::gpu::attention {

constexpr int kDecodeThreads = 128;
constexpr int kDecodePartition = 512;  // keys per split-K partition (grown when partials do not fit)
constexpr int kDecodeChunk = 256;      // keys whose scores a block holds in shared memory at once
constexpr int kDecodeUnroll = 4;       // tokens per lane group with loads in flight together
constexpr int kCombineThreads = 128;

// Sums v[0..G) over the LANES lanes of a token's lane group (aligned within the warp) and
// returns, in every lane, the total of value scattered_head<G>(lane_in_group). The first log2(G)
// steps halve the values each lane carries (it keeps one half, sends the other to its partner),
// the rest are a plain butterfly. Every lane of the warp must call it.
template <int G, int LANES>
__device__ __forceinline__ float group_reduce_scatter(float (&v)[G], int lane_in_group) {
#pragma unroll
  for (int step = 0; (1 << step) < G; step++) {
    const int half = (G >> step) / 2, offset = 1 << step;
    const bool upper = (lane_in_group & offset) != 0;
#pragma unroll
    for (int i = 0; i < half; i++) {
      const float keep = upper ? v[i + half] : v[i];
      const float send = upper ? v[i] : v[i + half];
      v[i] = keep + __shfl_xor_sync(0xffffffffu, send, offset);
    }
  }
  float s = v[0];
#pragma unroll
  for (int offset = G; offset < LANES; offset *= 2) s += __shfl_xor_sync(0xffffffffu, s, offset);
  return s;
}

// Which of the G values group_reduce_scatter leaves in a lane: step k's upper half adds G/2^(k+1).
template <int G>
__device__ __forceinline__ int scattered_head(int lane_in_group) {
  int head = 0;
#pragma unroll
  for (int step = 0; (1 << step) < G; step++)
    if (lane_in_group & (1 << step)) head += G >> (step + 1);
  return head;
}

// The decode kernel's thread layout and dynamic shared memory, shared with the host launch.
template <class CacheT, int DPAD, int GT>
struct DecodeLayout {
  static constexpr int V = 16 / int(sizeof(CacheT));                 // cache elements per 16 bytes
  static constexpr int NVEC = DPAD / V;                              // vectors per padded row
  static constexpr int LANES = NVEC < kWarpSize ? NVEC : kWarpSize;  // lanes per token
  static constexpr int VPL = NVEC / LANES;                           // vectors per lane
  static constexpr int E = VPL * V;                                  // elements per lane
  static constexpr int NG = kDecodeThreads / LANES;                  // token groups per block
  static constexpr int SS = kDecodeChunk + 1;                        // score row stride: heads' rows in different banks
  // floats: scaled q [GT][DPAD] | accumulators [GT * E][kDecodeThreads] | scores [GT][SS]; then
  // the chunk's slots (int) [kDecodeChunk].
  static constexpr int Q_OFFSET = 0;
  static constexpr int ACC_OFFSET = GT * DPAD;
  static constexpr int SCORE_OFFSET = ACC_OFFSET + GT * E * kDecodeThreads;
  static constexpr int SLOT_OFFSET = SCORE_OFFSET + GT * SS;
  static constexpr size_t smem_bytes = size_t(SLOT_OFFSET + kDecodeChunk) * 4;
};

// Grid: (max_partitions, num_kv_heads * head_chunks, num_seqs), kDecodeThreads threads,
// DecodeLayout::smem_bytes of dynamic shared memory.
// ActT: q and out; CacheT: K/V cache; DPAD: head_dim rounded up to 64/128/256 (vector slices
// past the real head_dim are skipped); GT: query heads per block (1, 2, 4 or 8).
// Registers: q (GT x E floats) lives in registers only during a chunk's K pass and the output
// accumulators (GT x E) only during its V pass; between passes they wait in shared memory. Both
// at once would take ~220 registers at GT = 8 (2 blocks per SM); apart ~110 (4 blocks, 16 warps,
// ~32 KB of loads in flight per SM).
template <class ActT, class CacheT, int DPAD, int GT>
__global__ void __launch_bounds__(kDecodeThreads) paged_attention_decode_kernel(const Params p) {
  using L = DecodeLayout<CacheT, DPAD, GT>;
  constexpr int V = L::V, LANES = L::LANES, VPL = L::VPL, E = L::E, NG = L::NG, SS = L::SS;
  constexpr int NW = kDecodeThreads / kWarpSize;
  constexpr int U = kDecodeUnroll;
  static_assert(GT <= LANES && NW <= NG, "decode layout");

  VT_DYNAMIC_SHARED(float, smem);
  float* s_q = smem + L::Q_OFFSET;                              // [GT][DPAD], pre-scaled, zero past head_dim
  float* s_acc = smem + L::ACC_OFFSET;                          // [GT * E][threads]: each thread's own accumulators
  float* s_score = smem + L::SCORE_OFFSET;                      // [GT][SS]: scores, then weights, of the chunk
  int* s_slot = reinterpret_cast<int*>(smem + L::SLOT_OFFSET);  // physical slot per key, -1: masked
  __shared__ float s_part[NG][GT];                              // per-group maxima, then per-warp sums
  __shared__ float s_max[GT], s_sum[GT], s_corr[GT];

  const int seq = blockIdx.z;
  const int chunk_of_group = blockIdx.y % p.head_chunks;
  const int kv_head = blockIdx.y / p.head_chunks;
  const int first_head = kv_head * p.group + chunk_of_group * GT;  // query head of h = 0
  const int heads_here = min(GT, p.group - chunk_of_group * GT);
  const int q_row = p.query_start_loc[seq];
  if (p.query_start_loc[seq + 1] - q_row != 1) return;  // not a decode: the prefill kernel's
  const DecodeRange range = decode_range(p, p.seq_lens[seq]);
  const int part = blockIdx.x;
  if (part >= range.partitions) return;  // max_seq_len bounds the grid, not this sequence
  const int part_begin = range.begin + part * p.partition_size;
  const int part_end = part == range.partitions - 1 ? range.end : part_begin + p.partition_size;

  const int tid = threadIdx.x, lane = tid % kWarpSize, warp = tid / kWarpSize;
  const int grp = tid / LANES, gl = tid % LANES;
  const int D = p.head_dim, nvec = D / V;
  const int my_head = scattered_head<GT>(gl);

  const ActT* qp = static_cast<const ActT*>(p.q) + int64_t(q_row) * p.q_row_stride + int64_t(first_head) * D;
  for (int idx = tid; idx < GT * DPAD; idx += kDecodeThreads) {
    const int h = idx / DPAD, d = idx % DPAD;
    s_q[idx] = h < heads_here && d < D ? to_float(qp[h * D + d]) * p.scale : 0.f;
  }
#pragma unroll
  for (int i = 0; i < GT * E; i++) s_acc[i * kDecodeThreads + tid] = 0.f;
  if (tid < GT) {
    s_max[tid] = -INFINITY;
    s_sum[tid] = 0.f;
  }

  const int32_t* table = p.block_tables + int64_t(seq) * p.max_blocks_per_seq;
  const CacheT* k_cache = static_cast<const CacheT*>(p.k_cache);
  const CacheT* v_cache = static_cast<const CacheT*>(p.v_cache);
  const int64_t head_offset = int64_t(kv_head) * D;
  const int64_t slot_stride = int64_t(p.num_kv_heads) * D;

  for (int c0 = part_begin; c0 < part_end; c0 += kDecodeChunk) {
    const int cn = min(kDecodeChunk, part_end - c0);
    for (int i = tid; i < cn; i += kDecodeThreads) {
      const int key = c0 + i, block = table[key >> p.block_shift];
      s_slot[i] = block < 0 ? -1 : block * p.block_size + (key & (p.block_size - 1));
    }
    __syncthreads();

    // Scores: lane group `grp` takes keys grp, grp + NG, ... of the chunk.
    {
      float q[GT][E];  // this lane's slice of each head
#pragma unroll
      for (int h = 0; h < GT; h++)
#pragma unroll
        for (int v = 0; v < VPL; v++)
#pragma unroll
          for (int e = 0; e < V; e++) q[h][v * V + e] = s_q[h * DPAD + (gl + v * LANES) * V + e];
      float my_max = -INFINITY;
      for (int i0 = 0; i0 < cn; i0 += NG * U) {
        uint4 raw[U][VPL];
        bool ok[U];
#pragma unroll
        for (int u = 0; u < U; u++) {
          const int i = i0 + grp + u * NG;
          const int slot = i < cn ? s_slot[i] : -1;
          ok[u] = slot >= 0;
          const CacheT* row = k_cache + (int64_t(slot) * slot_stride + head_offset);
#pragma unroll
          for (int v = 0; v < VPL; v++) {
            const int vec = gl + v * LANES;
            raw[u][v] = ok[u] && vec < nvec ? load16(row + vec * V) : zero16();
          }
        }
#pragma unroll
        for (int u = 0; u < U; u++) {
          float dot[GT];
#pragma unroll
          for (int h = 0; h < GT; h++) dot[h] = 0.f;
#pragma unroll
          for (int v = 0; v < VPL; v++) {
            float k[V];
            unpack(raw[u][v], k, TypeTag<CacheT>{});
#pragma unroll
            for (int h = 0; h < GT; h++)
#pragma unroll
              for (int e = 0; e < V; e++) dot[h] = fmaf(q[h][v * V + e], k[e], dot[h]);
          }
          const float s = group_reduce_scatter<GT, LANES>(dot, gl);
          const int i = i0 + grp + u * NG;
          if (gl < GT && i < cn) {
            const float score = ok[u] ? soft_cap_score(p, s) : -INFINITY;
            s_score[my_head * SS + i] = score;
            my_max = fmaxf(my_max, score);
          }
        }
      }
      if (gl < GT) s_part[grp][my_head] = my_max;
    }
    __syncthreads();
    if (tid < GT) {
      float chunk_max = -INFINITY;
      for (int g = 0; g < NG; g++) chunk_max = fmaxf(chunk_max, s_part[g][tid]);
      const float old_max = s_max[tid], new_max = fmaxf(old_max, chunk_max);
      s_corr[tid] = new_max == -INFINITY ? 1.f : softmax_exp<ActT>(old_max - new_max);
      s_max[tid] = new_max;
    }
    __syncthreads();

    // Weights exp(score - max) in place, and their sums.
    {
      float sums[GT];
#pragma unroll
      for (int h = 0; h < GT; h++) {
        const float m = s_max[h];
        float sum = 0.f;
        for (int i = tid; i < cn; i += kDecodeThreads) {
          const float s = s_score[h * SS + i];
          const float w = s == -INFINITY ? 0.f : softmax_exp<ActT>(s - m);
          s_score[h * SS + i] = w;
          sum += w;
        }
        sums[h] = warp_sum(sum);
      }
      if (lane == 0)
#pragma unroll
        for (int h = 0; h < GT; h++) s_part[warp][h] = sums[h];
    }
    __syncthreads();
    if (tid < GT) {
      float total = 0.f;
      for (int w = 0; w < NW; w++) total += s_part[w][tid];
      s_sum[tid] = s_sum[tid] * s_corr[tid] + total;
    }

    // Values: the same walk, accumulating weight * V for every head.
    {
      float acc[GT][E];
#pragma unroll
      for (int h = 0; h < GT; h++) {
        const float c = s_corr[h];
#pragma unroll
        for (int e = 0; e < E; e++) acc[h][e] = s_acc[(h * E + e) * kDecodeThreads + tid] * c;
      }
      for (int i0 = 0; i0 < cn; i0 += NG * U) {
        uint4 raw[U][VPL];
#pragma unroll
        for (int u = 0; u < U; u++) {
          const int i = i0 + grp + u * NG;
          const int slot = i < cn ? s_slot[i] : -1;
          const CacheT* row = v_cache + (int64_t(slot) * slot_stride + head_offset);
#pragma unroll
          for (int v = 0; v < VPL; v++) {
            const int vec = gl + v * LANES;
            raw[u][v] = slot >= 0 && vec < nvec ? load16(row + vec * V) : zero16();
          }
        }
#pragma unroll
        for (int u = 0; u < U; u++) {
          const int i = i0 + grp + u * NG;
          float w[GT];
#pragma unroll
          for (int h = 0; h < GT; h++) w[h] = i < cn ? s_score[h * SS + i] : 0.f;
#pragma unroll
          for (int v = 0; v < VPL; v++) {
            float x[V];
            unpack(raw[u][v], x, TypeTag<CacheT>{});
#pragma unroll
            for (int h = 0; h < GT; h++)
#pragma unroll
              for (int e = 0; e < V; e++) acc[h][v * V + e] = fmaf(w[h], x[e], acc[h][v * V + e]);
          }
        }
      }
#pragma unroll
      for (int h = 0; h < GT; h++)
#pragma unroll
        for (int e = 0; e < E; e++) s_acc[(h * E + e) * kDecodeThreads + tid] = acc[h][e];
    }
    __syncthreads();
  }
  __syncthreads();  // (also when the partition had no keys) every thread's accumulators are in

  // Sum the token groups' accumulators; write the output (one partition) or the partials.
  for (int idx = tid; idx < GT * DPAD; idx += kDecodeThreads) {
    const int h = idx / DPAD, d = idx % DPAD;
    if (h >= heads_here || d >= D) continue;
    const int vec = d / V, v = vec / LANES, lane_in_group = vec % LANES;
    const float* a = s_acc + (h * E + v * V + d % V) * kDecodeThreads + lane_in_group;
    float o = 0.f;
    for (int g = 0; g < NG; g++) o += a[g * LANES];
    const int head = first_head + h;
    if (range.partitions == 1) {
      const float sum = s_sum[h];
      static_cast<ActT*>(p.out)[(int64_t(q_row) * p.num_q_heads + head) * D + d] =
          from_float<ActT>(sum > 0.f ? o * (1.f / sum) : 0.f);
    } else {
      const int64_t slot = (int64_t(seq) * p.num_q_heads + head) * p.max_partitions + part;
      p.partial_out[slot * D + d] = o;
      if (d == 0) {
        p.partial_max[slot] = s_max[h];
        p.partial_sum[slot] = s_sum[h];
      }
    }
  }
}

// ---- GT <= 4: the two passes above, software-pipelined ----------------------------------------
// paged_attention_decode_kernel issues a group's loads, waits for them, computes, and only then
// issues the next group's; between its passes a block has no load in flight at all. Here a chunk's
// K row groups, then its V row groups, then the next chunk's K row groups form one stream held in
// two register buffers: once a buffer's math is done, the group two ahead is issued into it, so a
// lane always has one or two groups in flight, also while its block waits at the softmax barriers.
// The next chunk's block-table entries are read during the K pass and stored into a second slot
// buffer before those barriers, which publish them to the prefetch at the end of the V pass. A
// pass takes its groups in pairs (an odd count computes one group of masked keys, without loads),
// so every pass starts on the same buffer.
// As many rows in flight as the two-pass kernel at its peaks (2 groups of U = 2 rows per lane),
// but at all times instead of dropping to zero at every phase change, at the same occupancy (GT 4:
// 80 registers, 6 blocks per SM, ~48 KB in flight per SM). U = 4 would double that, but takes 128
// to 226 registers. GT 8 keeps the two-pass kernel (16-bit activations would fit the same 128
// registers, but ptxas spills the f32 instance).
constexpr int kDecodePipelineUnroll = 2;

// Issues the loads of keys first, first + NG, ... (U of them) of a chunk whose physical slots are
// `slots`: this lane's vectors of each row, zeros without a load past `count` or for a negative
// slot. Bit u of the result is set when key u has a row.
template <class L, class CacheT, int U>
__device__ __forceinline__ unsigned decode_issue_group(uint4 (&raw)[U][L::VPL], const CacheT* cache, const int* slots,
                                                       int first, int count, int64_t slot_stride, int64_t head_offset,
                                                       int gl, int nvec) {
  unsigned ok = 0;
#pragma unroll
  for (int u = 0; u < U; u++) {
    const int i = first + u * L::NG;
    const int slot = i < count ? slots[i] : -1;
    if (slot >= 0) ok |= 1u << u;
    const CacheT* row = cache + (int64_t(slot) * slot_stride + head_offset);
#pragma unroll
    for (int v = 0; v < L::VPL; v++) {
      const int vec = gl + v * L::LANES;
      raw[u][v] = slot >= 0 && vec < nvec ? load16(row + vec * L::V) : zero16();
    }
  }
  return ok;
}

// The K pass's math for one group (keys first, first + NG, ...): scores (soft-capped when asked)
// into s_score, -inf for keys without a row, and the running maximum of this lane's head.
template <class L, class CacheT, int GT, int U>
__device__ __forceinline__ void decode_score_group(const Params& p, const uint4 (&raw)[U][L::VPL], unsigned ok,
                                                   const float (&q)[GT][L::E], int first, int count, float* s_score,
                                                   int gl, int my_head, float& my_max) {
  constexpr int V = L::V;
#pragma unroll
  for (int u = 0; u < U; u++) {
    float dot[GT];
#pragma unroll
    for (int h = 0; h < GT; h++) dot[h] = 0.f;
#pragma unroll
    for (int v = 0; v < L::VPL; v++) {
      float k[V];
      unpack(raw[u][v], k, TypeTag<CacheT>{});
#pragma unroll
      for (int h = 0; h < GT; h++)
#pragma unroll
        for (int e = 0; e < V; e++) dot[h] = fmaf(q[h][v * V + e], k[e], dot[h]);
    }
    const float s = group_reduce_scatter<GT, L::LANES>(dot, gl);
    const int i = first + u * L::NG;
    if (gl < GT && i < count) {
      const float score = (ok >> u) & 1u ? soft_cap_score(p, s) : -INFINITY;
      s_score[my_head * L::SS + i] = score;
      my_max = fmaxf(my_max, score);
    }
  }
}

// The V pass's math for one group: acc += weight * V row for every head.
template <class L, class CacheT, int GT, int U>
__device__ __forceinline__ void decode_value_group(const uint4 (&raw)[U][L::VPL], int first, int count,
                                                   const float* s_score, float (&acc)[GT][L::E]) {
  constexpr int V = L::V;
#pragma unroll
  for (int u = 0; u < U; u++) {
    const int i = first + u * L::NG;
    float w[GT];
#pragma unroll
    for (int h = 0; h < GT; h++) w[h] = i < count ? s_score[h * L::SS + i] : 0.f;
#pragma unroll
    for (int v = 0; v < L::VPL; v++) {
      float x[V];
      unpack(raw[u][v], x, TypeTag<CacheT>{});
#pragma unroll
      for (int h = 0; h < GT; h++)
#pragma unroll
        for (int e = 0; e < V; e++) acc[h][v * V + e] = fmaf(w[h], x[e], acc[h][v * V + e]);
    }
  }
}

// Grid, block, parameters and shared memory: those of paged_attention_decode_kernel, with a second
// slot buffer of kDecodeChunk ints after the first.
template <class ActT, class CacheT, int DPAD, int GT>
__global__ void __launch_bounds__(kDecodeThreads) paged_attention_decode_pipelined_kernel(const Params p) {
  using L = DecodeLayout<CacheT, DPAD, GT>;
  constexpr int V = L::V, LANES = L::LANES, VPL = L::VPL, E = L::E, NG = L::NG;
  constexpr int NW = kDecodeThreads / kWarpSize;
  constexpr int U = kDecodePipelineUnroll, STEP = NG * U;  // STEP: keys of one group of every token group
  constexpr int SPT = kDecodeChunk / kDecodeThreads;       // next chunk's table entries per thread
  static_assert(GT <= LANES && NW <= NG && kDecodeChunk % kDecodeThreads == 0, "decode layout");

  VT_DYNAMIC_SHARED(float, smem);
  float* s_q = smem + L::Q_OFFSET;                              // [GT][DPAD], pre-scaled, zero past head_dim
  float* s_acc = smem + L::ACC_OFFSET;                          // [GT * E][threads]: each thread's own accumulators
  float* s_score = smem + L::SCORE_OFFSET;                      // [GT][SS]: scores, then weights, of the chunk
  int* s_slot = reinterpret_cast<int*>(smem + L::SLOT_OFFSET);  // [2][kDecodeChunk]: by chunk parity
  __shared__ float s_part[NG][GT];                              // per-group maxima, then per-warp sums
  __shared__ float s_max[GT], s_sum[GT], s_corr[GT];

  const int seq = blockIdx.z;
  const int chunk_of_group = blockIdx.y % p.head_chunks;
  const int kv_head = blockIdx.y / p.head_chunks;
  const int first_head = kv_head * p.group + chunk_of_group * GT;  // query head of h = 0
  const int heads_here = min(GT, p.group - chunk_of_group * GT);
  const int q_row = p.query_start_loc[seq];
  if (p.query_start_loc[seq + 1] - q_row != 1) return;  // not a decode: the prefill kernel's
  const DecodeRange range = decode_range(p, p.seq_lens[seq]);
  const int part = blockIdx.x;
  if (part >= range.partitions) return;  // max_seq_len bounds the grid, not this sequence
  const int part_begin = range.begin + part * p.partition_size;
  const int part_end = part == range.partitions - 1 ? range.end : part_begin + p.partition_size;

  const int tid = threadIdx.x, lane = tid % kWarpSize, warp = tid / kWarpSize;
  const int grp = tid / LANES, gl = tid % LANES;
  const int D = p.head_dim, nvec = D / V;
  const int my_head = scattered_head<GT>(gl);

  const ActT* qp = static_cast<const ActT*>(p.q) + int64_t(q_row) * p.q_row_stride + int64_t(first_head) * D;
  for (int idx = tid; idx < GT * DPAD; idx += kDecodeThreads) {
    const int h = idx / DPAD, d = idx % DPAD;
    s_q[idx] = h < heads_here && d < D ? to_float(qp[h * D + d]) * p.scale : 0.f;
  }
#pragma unroll
  for (int i = 0; i < GT * E; i++) s_acc[i * kDecodeThreads + tid] = 0.f;
  if (tid < GT) {
    s_max[tid] = -INFINITY;
    s_sum[tid] = 0.f;
  }

  const int32_t* table = p.block_tables + int64_t(seq) * p.max_blocks_per_seq;
  const CacheT* k_cache = static_cast<const CacheT*>(p.k_cache);
  const CacheT* v_cache = static_cast<const CacheT*>(p.v_cache);
  const int64_t head_offset = int64_t(kv_head) * D;
  const int64_t slot_stride = int64_t(p.num_kv_heads) * D;
  auto slot_of = [&](int key, int block) { return block < 0 ? -1 : block * p.block_size + (key & (p.block_size - 1)); };

  const int first_cn = min(kDecodeChunk, part_end - part_begin);
  for (int i = tid; i < first_cn; i += kDecodeThreads) {
    const int key = part_begin + i;
    s_slot[i] = slot_of(key, table[key >> p.block_shift]);
  }
  __syncthreads();

  auto issue = [&](uint4(&raw)[U][VPL], const CacheT* cache, const int* slots, int first, int count) {
    return decode_issue_group<L>(raw, cache, slots, first, count, slot_stride, head_offset, gl, nvec);
  };
  // The two buffers of the stream; a group's `ok` bits go with it.
  uint4 ra[U][VPL], rb[U][VPL];
  unsigned ok_a = issue(ra, k_cache, s_slot, grp, first_cn);
  unsigned ok_b = issue(rb, k_cache, s_slot, grp + STEP, first_cn);

  int buf = 0;
  for (int c0 = part_begin; c0 < part_end; c0 += kDecodeChunk, buf ^= 1) {
    const int cn = min(kDecodeChunk, part_end - c0);
    const int next_c0 = c0 + kDecodeChunk, next_cn = min(kDecodeChunk, part_end - next_c0);  // <= 0: none
    const int* slots = s_slot + buf * kDecodeChunk;
    int* next_slots = s_slot + (buf ^ 1) * kDecodeChunk;
    int next_block[SPT];  // read now, used after the K pass: their latency hides behind it
#pragma unroll
    for (int j = 0; j < SPT; j++) {
      const int i = tid + j * kDecodeThreads;
      next_block[j] = i < next_cn ? table[(next_c0 + i) >> p.block_shift] : -1;
    }

    // Scores; the pass's last pair of groups is followed by the V pass's first pair.
    {
      float q[GT][E];
#pragma unroll
      for (int h = 0; h < GT; h++)
#pragma unroll
        for (int v = 0; v < VPL; v++)
#pragma unroll
          for (int e = 0; e < V; e++) q[h][v * V + e] = s_q[h * DPAD + (gl + v * LANES) * V + e];
      float my_max = -INFINITY;
      for (int i0 = 0; i0 < cn; i0 += 2 * STEP) {
        const bool more = i0 + 2 * STEP < cn;
        const CacheT* next_cache = more ? k_cache : v_cache;
        const int next_i = more ? i0 + 2 * STEP : 0;
        decode_score_group<L, CacheT>(p, ra, ok_a, q, i0 + grp, cn, s_score, gl, my_head, my_max);
        ok_a = issue(ra, next_cache, slots, next_i + grp, cn);
        decode_score_group<L, CacheT>(p, rb, ok_b, q, i0 + STEP + grp, cn, s_score, gl, my_head, my_max);
        ok_b = issue(rb, next_cache, slots, next_i + STEP + grp, cn);
      }
      if (gl < GT) s_part[grp][my_head] = my_max;
    }
#pragma unroll
    for (int j = 0; j < SPT; j++) {
      const int i = tid + j * kDecodeThreads;
      if (i < next_cn) next_slots[i] = slot_of(next_c0 + i, next_block[j]);
    }
    __syncthreads();  // also publishes next_slots to the V pass's prefetch
    if (tid < GT) {
      float chunk_max = -INFINITY;
      for (int g = 0; g < NG; g++) chunk_max = fmaxf(chunk_max, s_part[g][tid]);
      const float old_max = s_max[tid], new_max = fmaxf(old_max, chunk_max);
      s_corr[tid] = new_max == -INFINITY ? 1.f : softmax_exp<ActT>(old_max - new_max);
      s_max[tid] = new_max;
    }
    __syncthreads();

    // Weights exp(score - max) in place, and their sums.
    {
      float sums[GT];
#pragma unroll
      for (int h = 0; h < GT; h++) {
        const float m = s_max[h];
        float sum = 0.f;
        for (int i = tid; i < cn; i += kDecodeThreads) {
          const float s = s_score[h * L::SS + i];
          const float w = s == -INFINITY ? 0.f : softmax_exp<ActT>(s - m);
          s_score[h * L::SS + i] = w;
          sum += w;
        }
        sums[h] = warp_sum(sum);
      }
      if (lane == 0)
#pragma unroll
        for (int h = 0; h < GT; h++) s_part[warp][h] = sums[h];
    }
    __syncthreads();
    if (tid < GT) {
      float total = 0.f;
      for (int w = 0; w < NW; w++) total += s_part[w][tid];
      s_sum[tid] = s_sum[tid] * s_corr[tid] + total;
    }

    // Values; the pass's last pair of groups is followed by the next chunk's first K pair.
    {
      float acc[GT][E];
#pragma unroll
      for (int h = 0; h < GT; h++) {
        const float c = s_corr[h];
#pragma unroll
        for (int e = 0; e < E; e++) acc[h][e] = s_acc[(h * E + e) * kDecodeThreads + tid] * c;
      }
      for (int i0 = 0; i0 < cn; i0 += 2 * STEP) {
        const bool more = i0 + 2 * STEP < cn;
        const CacheT* next_cache = more ? v_cache : k_cache;
        const int* next_group_slots = more ? slots : next_slots;
        const int next_i = more ? i0 + 2 * STEP : 0, next_count = more ? cn : next_cn;
        decode_value_group<L, CacheT>(ra, i0 + grp, cn, s_score, acc);
        ok_a = issue(ra, next_cache, next_group_slots, next_i + grp, next_count);
        decode_value_group<L, CacheT>(rb, i0 + STEP + grp, cn, s_score, acc);
        ok_b = issue(rb, next_cache, next_group_slots, next_i + STEP + grp, next_count);
      }
#pragma unroll
      for (int h = 0; h < GT; h++)
#pragma unroll
        for (int e = 0; e < E; e++) s_acc[(h * E + e) * kDecodeThreads + tid] = acc[h][e];
    }
    __syncthreads();
  }
  __syncthreads();  // (also when the partition had no keys) every thread's accumulators are in

  // Sum the token groups' accumulators; write the output (one partition) or the partials.
  for (int idx = tid; idx < GT * DPAD; idx += kDecodeThreads) {
    const int h = idx / DPAD, d = idx % DPAD;
    if (h >= heads_here || d >= D) continue;
    const int vec = d / V, v = vec / LANES, lane_in_group = vec % LANES;
    const float* a = s_acc + (h * E + v * V + d % V) * kDecodeThreads + lane_in_group;
    float o = 0.f;
    for (int g = 0; g < NG; g++) o += a[g * LANES];
    const int head = first_head + h;
    if (range.partitions == 1) {
      const float sum = s_sum[h];
      static_cast<ActT*>(p.out)[(int64_t(q_row) * p.num_q_heads + head) * D + d] =
          from_float<ActT>(sum > 0.f ? o * (1.f / sum) : 0.f);
    } else {
      const int64_t slot = (int64_t(seq) * p.num_q_heads + head) * p.max_partitions + part;
      p.partial_out[slot * D + d] = o;
      if (d == 0) {
        p.partial_max[slot] = s_max[h];
        p.partial_sum[slot] = s_sum[h];
      }
    }
  }
}

// ---- The kernel a decode launches, and its shared memory ---------------------------------------
template <class ActT, class CacheT, int DPAD, int GT>
struct DecodeKernel {
  using L = DecodeLayout<CacheT, DPAD, GT>;
  static constexpr bool kPipelined = GT <= 4;
  static constexpr size_t smem_bytes = L::smem_bytes + (kPipelined ? kDecodeChunk * sizeof(int) : 0);
  static auto kernel() {
    if constexpr (kPipelined)
      return &paged_attention_decode_pipelined_kernel<ActT, CacheT, DPAD, GT>;
    else
      return &paged_attention_decode_kernel<ActT, CacheT, DPAD, GT>;
  }
};

// Merges the split-K partials of the decodes that needed more than one partition:
// out = sum_p exp(max_p - M) * out_p / sum_p exp(max_p - M) * sum_p, M = max_p max_p.
// Grid: (num_q_heads, num_seqs), kCombineThreads threads, max_partitions floats of dynamic
// shared memory for the partitions' weights.
template <class ActT>
__global__ void __launch_bounds__(kCombineThreads) paged_attention_combine_kernel(const Params p) {
  VT_DYNAMIC_SHARED(float, weights);
  __shared__ float scratch[kWarpSize];
  const int head = blockIdx.x, seq = blockIdx.y;
  const int q_row = p.query_start_loc[seq];
  if (p.query_start_loc[seq + 1] - q_row != 1) return;
  const DecodeRange range = decode_range(p, p.seq_lens[seq]);
  const int n = range.partitions;
  if (n <= 1) return;  // written directly by the decode kernel
  const int64_t base = (int64_t(seq) * p.num_q_heads + head) * p.max_partitions;

  float m = -INFINITY;
  for (int i = threadIdx.x; i < n; i += blockDim.x) m = fmaxf(m, p.partial_max[base + i]);
  m = block_max(m, scratch);
  float total = 0.f;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    const float pm = p.partial_max[base + i];
    const float w = pm == -INFINITY ? 0.f : softmax_exp<ActT>(pm - m);  // a partition of masked keys
    weights[i] = w;
    total += w * p.partial_sum[base + i];
  }
  total = block_sum(total, scratch);  // its barriers also publish `weights`
  const float inv = total > 0.f ? 1.f / total : 0.f;
  const int D = p.head_dim;
  ActT* out = static_cast<ActT*>(p.out) + (int64_t(q_row) * p.num_q_heads + head) * D;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float o = 0.f;
    for (int i = 0; i < n; i++) o = fmaf(weights[i], p.partial_out[(base + i) * D + d], o);
    out[d] = from_float<ActT>(o * inv);
  }
}

}  // namespace vt::gpu::attention
