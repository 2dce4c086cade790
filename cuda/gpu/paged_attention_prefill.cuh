// Prefill-chunk attention (sequences with more than one query token) over the paged KV cache:
// FlashAttention-style tiling with an online softmax, causal by position.
//
// Bound: compute. A tile of query rows reuses every K/V row it loads for all its rows, so the
// work is the two matrix products (Q K^T and P V, 4 * rows * keys * head_dim flops).
// Rows: a (sequence, KV head) problem has q_len * group rows, row = token * group + head of the
// group, so a tile shares each K/V tile among all the query heads of the KV head (GQA) and among
// consecutive tokens. Grid: (row tiles of max_query_len * group, num_kv_heads, num_seqs), the
// row tiles in reverse order so the costliest (latest tokens, most keys) start first; tiles past
// a sequence's rows, and decodes (the decode kernel's), return at once.
//
// Tensor-core kernel (act == cache == f16/bf16): 4 warps, BM = 64 rows (16 per warp), key tiles
// of BN = 64 (32 for head_dim 256). Per key tile the block stages K and V (16-byte coalesced
// loads through the block table) in shared memory; each warp computes its 16 x BN scores with
// nvcuda::wmma (16x16x16, f32 accumulate), runs the online softmax on them in shared memory (two
// lanes per row), writes P as 16-bit over its scores, rescales its output accumulators and adds
// P V, the output staying in wmma accumulator fragments for the whole key loop. Row-wise scaling
// of an accumulator fragment needs the row of each element, which CUDA leaves unspecified: each
// warp learns it once by loading a matrix whose elements are their own row index. Shared memory:
// 45 KB (head_dim 64), 69 KB (128), 76 KB (256); with 128-214 registers that makes 4, 3 and 2
// resident blocks of 4 warps per SM on H100.
//
// SIMT kernel (act f32, any cache dtype; the CPU-matching test path): BM = BN = 32 (16 for
// head_dim 256), 128 threads; a row's scores and output columns belong to TPR = 128 / BM
// consecutive lanes, so the softmax statistics and the output rescale stay in registers; K and V
// (converted to f32) take turns in one shared tile.
#pragma once

#include "paged_attention_common.cuh"

namespace vt::gpu::attention {

constexpr int kPrefillThreads = 128;

// The rows and keys a prefill block owns; `valid` is false when it has nothing to do.
struct PrefillTile {
  bool valid;
  int q_begin;     // the sequence's first query row in q and out
  int rows;        // q_len * group
  int r0;          // the tile's first row
  int first_pos;   // position of the sequence's first query token
  int key_begin;   // keys the tile's rows attend to: [key_begin, key_end)
  int key_end;
};

__device__ __forceinline__ PrefillTile prefill_tile(const Params& p, int tile_rows) {
  PrefillTile t;
  const int seq = blockIdx.z;
  t.q_begin = p.query_start_loc[seq];
  const int q_len = p.query_start_loc[seq + 1] - t.q_begin;
  t.rows = q_len * p.group;
  t.r0 = int(gridDim.x - 1 - blockIdx.x) * tile_rows;
  t.valid = q_len > 1 && t.r0 < t.rows;
  t.first_pos = p.seq_lens[seq] - q_len;
  const int r_last = min(t.r0 + tile_rows, t.rows) - 1;
  t.key_end = t.first_pos + r_last / p.group + 1;
  t.key_begin = p.sliding_window > 0 ? max(0, t.first_pos + t.r0 / p.group - p.sliding_window + 1) : 0;
  return t;
}

// ---- tensor cores ----------------------------------------------------------------------------

template <int DPAD>
struct MmaTile {
  static constexpr int BM = 64;                     // query rows: 4 warps x 16
  static constexpr int BN = DPAD <= 128 ? 64 : 32;  // keys per step
  static constexpr int LDQ = DPAD + 8;              // 16-bit elements per Q/K/V row (+8: banks)
  static constexpr int LDS = BN + 4;                // floats per score row
  static constexpr int LDP = 2 * LDS;               // 16-bit P row, overlaying its score row
  // Q, K, V (16-bit), scores (f32), then the rows' rescale factors (f32) and keys' validity (int).
  // All of it is dynamic: with no static shared memory the buffer starts at the block's shared
  // window, aligned far beyond the 32 bytes wmma pointers need.
  static constexpr size_t smem_bytes(size_t element_bytes) {
    return size_t(BM * LDQ + 2 * BN * LDQ) * element_bytes + size_t(BM * LDS + BM + BN) * sizeof(float);
  }
};

template <class T, int DPAD>
__global__ void __launch_bounds__(kPrefillThreads) paged_attention_prefill_mma_kernel(const Params p) {
  namespace wmma = nvcuda::wmma;
  using Tile = MmaTile<DPAD>;
  constexpr int BM = Tile::BM, BN = Tile::BN, LDQ = Tile::LDQ, LDS = Tile::LDS, LDP = Tile::LDP;
  constexpr int NF = DPAD / 16, KF = BN / 16, VECS = DPAD / 8;
  using Acc = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;
  using FragA = wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major>;
  using FragKt = wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major>;
  using FragV = wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major>;
  constexpr int NE = Acc::num_elements;
  // wmma pointers must be 32-byte aligned: every row block below starts at a multiple of 32.
  static_assert((16 * LDQ * sizeof(T)) % 32 == 0 && (16 * LDS * sizeof(float)) % 32 == 0, "wmma alignment");

  VT_DYNAMIC_SHARED(unsigned char, smem);
  T* qs = reinterpret_cast<T*>(smem);  // [BM][LDQ]
  T* ks = qs + BM * LDQ;               // [BN][LDQ]
  T* vs = ks + BN * LDQ;               // [BN][LDQ]
  float* ss = reinterpret_cast<float*>(vs + BN * LDQ);  // [BM][LDS] scores, then P
  float* s_row_scale = ss + BM * LDS;                   // [BM] per-row output rescale
  int* s_key_ok = reinterpret_cast<int*>(s_row_scale + BM);  // [BN] key has a cache row

  const PrefillTile t = prefill_tile(p, BM);
  if (!t.valid) return;
  const int kv_head = blockIdx.y, seq = blockIdx.z;
  const int tid = threadIdx.x, lane = tid % kWarpSize, warp = tid / kWarpSize;
  const int D = p.head_dim, nd16 = (D + 15) / 16;

  // The Q tile, zero past the rows and past head_dim.
  const T* q = static_cast<const T*>(p.q);
  for (int idx = tid; idx < BM * DPAD; idx += kPrefillThreads) {
    const int r = idx / DPAD, d = idx % DPAD, row = t.r0 + r;
    T value = from_float<T>(0.f);
    if (row < t.rows && d < D) {
      const int token = row / p.group, head = kv_head * p.group + row % p.group;
      value = q[int64_t(t.q_begin + token) * p.q_row_stride + int64_t(head) * D + d];
    }
    qs[r * LDQ + d] = value;
  }

  // Learn the row of each accumulator element: load a tile whose elements are their row index.
  float* sw = ss + warp * 16 * LDS;  // this warp's 16 score rows
  for (int i = lane; i < 256; i += kWarpSize) sw[(i / 16) * LDS + i % 16] = float(i / 16);
  __syncwarp();
  Acc o[NF];
  wmma::load_matrix_sync(o[0], sw, LDS, wmma::mem_row_major);
  int row_of[NE];
#pragma unroll
  for (int i = 0; i < NE; i++) row_of[i] = int(o[0].x[i]);
#pragma unroll
  for (int j = 0; j < NF; j++) wmma::fill_fragment(o[j], 0.f);

  // This lane's softmax row (two lanes per row, interleaved columns) and its statistics.
  const int rr = lane >> 1, half = lane & 1;
  const int my_row = t.r0 + warp * 16 + rr;
  const bool row_ok = my_row < t.rows;
  const int my_token = row_ok ? my_row / p.group : 0;
  const int my_pos = t.first_pos + my_token;
  const int my_first_key = p.sliding_window > 0 ? my_pos - p.sliding_window + 1 : 0;
  float m = -INFINITY, l = 0.f;
  // The warp's key range, to skip key tiles it is entirely masked from (warp-uniform).
  const int w_r0 = t.r0 + warp * 16;
  const bool warp_rows = w_r0 < t.rows;
  const int w_last_pos = t.first_pos + (min(w_r0 + 16, t.rows) - 1) / p.group;
  const int w_first_key = p.sliding_window > 0 ? t.first_pos + w_r0 / p.group - p.sliding_window + 1 : 0;

  const int32_t* table = p.block_tables + int64_t(seq) * p.max_blocks_per_seq;
  const T* k_cache = static_cast<const T*>(p.k_cache);
  const T* v_cache = static_cast<const T*>(p.v_cache);

  for (int k0 = t.key_begin; k0 < t.key_end; k0 += BN) {
    for (int idx = tid; idx < BN * VECS; idx += kPrefillThreads) {
      const int c = idx / VECS, vec = idx % VECS, key = k0 + c;
      uint4 k_raw = zero16(), v_raw = zero16();
      bool ok = false;
      if (key < t.key_end) {
        const int64_t row = cache_row(p, table, key, kv_head);
        ok = row >= 0;
        if (ok && vec * 8 < D) {
          k_raw = load16(k_cache + row + vec * 8);
          v_raw = load16(v_cache + row + vec * 8);
        }
      }
      VT_CHECK_ALIGNED(ks + c * LDQ + vec * 8, 16);
      VT_CHECK_ALIGNED(vs + c * LDQ + vec * 8, 16);
      *reinterpret_cast<uint4*>(ks + c * LDQ + vec * 8) = k_raw;
      *reinterpret_cast<uint4*>(vs + c * LDQ + vec * 8) = v_raw;
      if (vec == 0) s_key_ok[c] = ok;
    }
    __syncthreads();

    if (warp_rows && k0 <= w_last_pos && k0 + BN > w_first_key) {
      // S = Q K^T for the warp's 16 rows.
      Acc s[KF];
#pragma unroll
      for (int kf = 0; kf < KF; kf++) wmma::fill_fragment(s[kf], 0.f);
#pragma unroll
      for (int kd = 0; kd < NF; kd++) {
        if (kd < nd16) {
          FragA a;
          wmma::load_matrix_sync(a, qs + warp * 16 * LDQ + kd * 16, LDQ);
#pragma unroll
          for (int kf = 0; kf < KF; kf++) {
            FragKt b;
            wmma::load_matrix_sync(b, ks + kf * 16 * LDQ + kd * 16, LDQ);
            wmma::mma_sync(s[kf], a, b, s[kf]);
          }
        }
      }
#pragma unroll
      for (int kf = 0; kf < KF; kf++) wmma::store_matrix_sync(sw + kf * 16, s[kf], LDS, wmma::mem_row_major);
      __syncwarp();

      // Online softmax of this lane's half row.
      float x[BN / 2];
      float tile_max = -INFINITY;
#pragma unroll
      for (int j = 0; j < BN / 2; j++) {
        const int c = 2 * j + half, key = k0 + c;
        const bool ok = row_ok && key <= my_pos && key >= my_first_key && s_key_ok[c];
        x[j] = ok ? sw[rr * LDS + c] * p.scale : -INFINITY;
        tile_max = fmaxf(tile_max, x[j]);
      }
      tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
      const float new_max = fmaxf(m, tile_max);
      const float corr = new_max == -INFINITY ? 1.f : __expf(m - new_max);
      float sum = 0.f;
#pragma unroll
      for (int j = 0; j < BN / 2; j++) {
        x[j] = x[j] == -INFINITY ? 0.f : __expf(x[j] - new_max);
        sum += x[j];
      }
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      l = l * corr + sum;
      m = new_max;
      __syncwarp();  // every lane has read its scores before P overwrites them
      T* pw = reinterpret_cast<T*>(sw);
#pragma unroll
      for (int j = 0; j < BN / 2; j++) pw[rr * LDP + 2 * j + half] = from_float<T>(x[j]);
      if (half == 0) s_row_scale[warp * 16 + rr] = corr;
      __syncwarp();

      // O = O * corr (per row) + P V.
#pragma unroll
      for (int j = 0; j < NF; j++)
        if (j < nd16)
#pragma unroll
          for (int i = 0; i < NE; i++) o[j].x[i] *= s_row_scale[warp * 16 + row_of[i]];
#pragma unroll
      for (int kf = 0; kf < KF; kf++) {
        FragA a;
        wmma::load_matrix_sync(a, pw + kf * 16, LDP);
#pragma unroll
        for (int j = 0; j < NF; j++) {
          if (j < nd16) {
            FragV b;
            wmma::load_matrix_sync(b, vs + kf * 16 * LDQ + j * 16, LDQ);
            wmma::mma_sync(o[j], a, b, o[j]);
          }
        }
      }
    }
    __syncthreads();  // before the next tile's K/V overwrite these
  }

  if (warp_rows) {
    if (half == 0) s_row_scale[warp * 16 + rr] = l > 0.f ? 1.f / l : 0.f;
    __syncwarp();
    T* out = static_cast<T*>(p.out) + int64_t(t.q_begin + my_token) * p.num_q_heads * D +
             int64_t(kv_head * p.group + (row_ok ? my_row % p.group : 0)) * D;
#pragma unroll
    for (int j = 0; j < NF; j++) {
      if (j < nd16) {
#pragma unroll
        for (int i = 0; i < NE; i++) o[j].x[i] *= s_row_scale[warp * 16 + row_of[i]];
        wmma::store_matrix_sync(sw, o[j], LDS, wmma::mem_row_major);
        __syncwarp();
        if (row_ok)
#pragma unroll
          for (int e = 0; e < 8; e++) {
            const int d = j * 16 + half * 8 + e;
            if (d < D) out[d] = from_float<T>(sw[rr * LDS + half * 8 + e]);
          }
        __syncwarp();
      }
    }
  }
}

// ---- SIMT (f32 activations) ------------------------------------------------------------------

template <int DPAD>
struct SimtTile {
  static constexpr int BM = DPAD <= 128 ? 32 : 16;  // rows; also keys per step
  static constexpr int TPR = kPrefillThreads / BM;  // threads per row
  static constexpr int LD = DPAD + 1;               // odd stride: rows in different banks
};

template <class CacheT, int DPAD>
__global__ void __launch_bounds__(kPrefillThreads) paged_attention_prefill_simt_kernel(const Params p) {
  using Tile = SimtTile<DPAD>;
  constexpr int BM = Tile::BM, BN = Tile::BM, TPR = Tile::TPR, LD = Tile::LD;
  constexpr int KPT = BN / TPR, DPT = DPAD / TPR;  // keys / output columns per thread
  constexpr int V = 16 / int(sizeof(CacheT)), VECS = DPAD / V;
  __shared__ float qs[BM * LD];
  __shared__ float kvs[BN * LD];  // K, then V, of the current key tile
  __shared__ float ps[BM * (BN + 1)];
  __shared__ int64_t s_row[BN];

  const PrefillTile t = prefill_tile(p, BM);
  if (!t.valid) return;
  const int kv_head = blockIdx.y, seq = blockIdx.z;
  const int tid = threadIdx.x, r = tid / TPR, sub = tid % TPR;
  const int D = p.head_dim;

  const float* q = static_cast<const float*>(p.q);
  for (int idx = tid; idx < BM * DPAD; idx += kPrefillThreads) {
    const int rr = idx / DPAD, d = idx % DPAD, row = t.r0 + rr;
    float value = 0.f;
    if (row < t.rows && d < D) {
      const int token = row / p.group, head = kv_head * p.group + row % p.group;
      value = q[int64_t(t.q_begin + token) * p.q_row_stride + int64_t(head) * D + d];
    }
    qs[rr * LD + d] = value;
  }

  const int my_row = t.r0 + r;
  const bool row_ok = my_row < t.rows;
  const int my_token = row_ok ? my_row / p.group : 0;
  const int my_pos = t.first_pos + my_token;
  const int my_first_key = p.sliding_window > 0 ? my_pos - p.sliding_window + 1 : 0;
  float m = -INFINITY, l = 0.f, acc[DPT];
#pragma unroll
  for (int j = 0; j < DPT; j++) acc[j] = 0.f;

  const int32_t* table = p.block_tables + int64_t(seq) * p.max_blocks_per_seq;
  const CacheT* k_cache = static_cast<const CacheT*>(p.k_cache);
  const CacheT* v_cache = static_cast<const CacheT*>(p.v_cache);
  auto load_tile = [&](const CacheT* cache) {
    for (int idx = tid; idx < BN * VECS; idx += kPrefillThreads) {
      const int c = idx / VECS, vec = idx % VECS;
      const int64_t row = s_row[c];
      float f[V];
      unpack(row >= 0 && vec * V < D ? load16(cache + row + vec * V) : zero16(), f, TypeTag<CacheT>{});
#pragma unroll
      for (int e = 0; e < V; e++) kvs[c * LD + vec * V + e] = f[e];
    }
  };

  for (int k0 = t.key_begin; k0 < t.key_end; k0 += BN) {
    if (tid < BN) {
      const int key = k0 + tid;
      s_row[tid] = key < t.key_end ? cache_row(p, table, key, kv_head) : -1;
    }
    __syncthreads();
    load_tile(k_cache);
    __syncthreads();

    float x[KPT];
    float tile_max = -INFINITY;
#pragma unroll
    for (int j = 0; j < KPT; j++) {
      const int c = sub + TPR * j, key = k0 + c;
      // Eight independent partial sums (head_dim is a multiple of 8): shorter dependency chains,
      // and a rounding error closer to the CPU backend's vectorized dot.
      float part[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
      for (int d = 0; d < D; d += 8)
#pragma unroll
        for (int e = 0; e < 8; e++) part[e] = fmaf(qs[r * LD + d + e], kvs[c * LD + d + e], part[e]);
      const float dot = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
      const bool ok = row_ok && key <= my_pos && key >= my_first_key && s_row[c] >= 0;
      x[j] = ok ? dot * p.scale : -INFINITY;
      tile_max = fmaxf(tile_max, x[j]);
    }
#pragma unroll
    for (int offset = 1; offset < TPR; offset *= 2)
      tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, offset));
    const float new_max = fmaxf(m, tile_max);
    const float corr = new_max == -INFINITY ? 1.f : expf(m - new_max);
    float sum = 0.f;
#pragma unroll
    for (int j = 0; j < KPT; j++) {
      x[j] = x[j] == -INFINITY ? 0.f : expf(x[j] - new_max);
      sum += x[j];
      ps[r * (BN + 1) + sub + TPR * j] = x[j];
    }
#pragma unroll
    for (int offset = 1; offset < TPR; offset *= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
    l = l * corr + sum;
    m = new_max;
    __syncthreads();
    load_tile(v_cache);
    __syncthreads();

#pragma unroll
    for (int j = 0; j < DPT; j++) acc[j] *= corr;
    for (int c = 0; c < BN; c++) {
      const float w = ps[r * (BN + 1) + c];
#pragma unroll
      for (int j = 0; j < DPT; j++) acc[j] = fmaf(w, kvs[c * LD + sub + TPR * j], acc[j]);
    }
    // The next tile's first barrier (after s_row) also orders these reads before its K load.
  }

  if (row_ok) {
    const float inv = l > 0.f ? 1.f / l : 0.f;
    float* out = static_cast<float*>(p.out) + int64_t(t.q_begin + my_token) * p.num_q_heads * D +
                 int64_t(kv_head * p.group + my_row % p.group) * D;
#pragma unroll
    for (int j = 0; j < DPT; j++) {
      const int d = sub + TPR * j;
      if (d < D) out[d] = acc[j] * inv;
    }
  }
}

}  // namespace vt::gpu::attention
