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
// Tensor-core kernel (act == cache == f16/bf16), nvcuda::wmma 16x16x16 with f32 accumulation:
// 4 warps, each owning 32 rows (two 16-row fragments; 16 rows for head_dim 256, whose O would not
// fit twice in registers), so a block has BM = 128 rows (64), and each K or V fragment a warp
// loads from shared memory feeds two MMAs (one for head_dim 256): what bounds wmma code on H100 is
// shared-memory traffic per MMA and issue slots rather than the tensor cores. Key tiles of BN = 64
// (32 for head_dim 256, within sm_89's 99 KB per block). K and V have one buffer each, filled by
// cp.async (zero-filled for keys without a cache row and for columns past head_dim) and taking
// turns: V(n) lands while the warps compute S = Q K(n)^T and its softmax, K(n + 1) while they
// compute P V(n); each wait-and-barrier both lands one tile and frees the other buffer. One K and
// one V buffer instead of two of each keeps two blocks per SM, which hides more latency than a
// deeper prefetch would. The block table is read once per key (by BN threads, a tile ahead).
// Softmax on the fragments, layout-agnostic (CUDA leaves a fragment's element positions
// unspecified: each warp learns the (row, column) of every accumulator element once, by loading a
// tile whose elements are 16 * row + column). Each lane scales (base 2) and masks its S elements
// in registers and takes their maxima across the fragments of a row block (same row, same column
// mod 16); only that 16-column partial goes through shared memory, to the lanes owning the row
// (32 / rows-per-warp of them), whose new max comes back per row; P = 2^(x - max) is converted
// once to 16-bit, where the matrix_a fragments of P V load it, and the row sum is read back from
// it (as P V sees it). O stays in accumulators for the whole key loop; its rescale is skipped when
// no row's max moved. Only tiles that some row of a warp sees in part are masked element by
// element; tiles none of its rows sees are skipped. At the end O / l goes through the warp's own
// Q rows to 16-byte row stores (element-wise when q or out is not 16-byte aligned).
// nvcc 13 for sm_90, bf16/f16, head_dim 64 / 128 / 256: 204 / 255 / 207-210 registers, no spills;
// 56 / 88 / 72 KB of shared memory; 2 blocks (8 warps) per SM on H100/H200 for all three.
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
  int q_begin;    // the sequence's first query row in q and out
  int rows;       // q_len * group
  int r0;         // the tile's first row
  int first_pos;  // position of the sequence's first query token
  int key_begin;  // keys the tile's rows attend to: [key_begin, key_end)
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
  static constexpr int WARPS = kPrefillThreads / kWarpSize;
  static constexpr int RF = DPAD <= 128 ? 2 : 1;    // 16-row fragments per warp (O must fit in registers)
  static constexpr int RPW = 16 * RF;               // rows per warp
  static constexpr int BM = WARPS * RPW;            // rows per block: 128, or 64 for head_dim 256
  static constexpr int BN = DPAD <= 128 ? 64 : 32;  // keys per step (head_dim 256: within sm_89's 99 KB)
  static constexpr int LDQ = DPAD + 8;              // 16-bit elements per Q/K/V row (+8: banks)
  static constexpr int LDP = BN + 8;                // 16-bit elements per P row
  static constexpr int LDR = 20;                    // floats per row of the row reductions (float4
                                                    // rows of 8 lanes fall in distinct banks)
  // Per warp: P (16-bit), overlaying the f32 partials of its row reductions.
  static constexpr int kScratchBytes = RPW * LDP * 2 > RPW* LDR * 4 ? RPW* LDP * 2 : RPW* LDR * 4;
  // Q, K, V (16-bit), the warps' scratch, two key tiles' cache rows (int64), then per warp its
  // rows' maxima and rescale factors (f32). All of it is dynamic: with no static shared memory the
  // buffer starts at the block's shared window, aligned far beyond the 32 bytes wmma pointers need.
  static constexpr size_t smem_bytes(size_t element_bytes) {
    return size_t(BM + 2 * BN) * LDQ * element_bytes + size_t(WARPS) * kScratchBytes + 2 * BN * sizeof(int64_t) +
           size_t(WARPS) * 2 * RPW * sizeof(float);
  }
};

// A 16-byte cp.async, or 16 zero bytes when !ok (src is then only required to be aligned).
template <class T>
__device__ __forceinline__ void copy16_async(T* dst, const T* src, bool ok) {
  if (ok)
    __pipeline_memcpy_async(dst, src, 16);
  else
    __pipeline_memcpy_async(dst, src, 16, 16);
}

template <class T, int DPAD>
__global__ void __launch_bounds__(kPrefillThreads) paged_attention_prefill_mma_kernel(const Params p) {
  namespace wmma = nvcuda::wmma;
  using Tile = MmaTile<DPAD>;
  constexpr int WARPS = Tile::WARPS, RF = Tile::RF, RPW = Tile::RPW, BM = Tile::BM, BN = Tile::BN;
  constexpr int LDQ = Tile::LDQ, LDP = Tile::LDP, LDR = Tile::LDR;
  constexpr int NF = DPAD / 16, KF = BN / 16, VECS = DPAD / 8;
  constexpr int LPR = kWarpSize / RPW;  // lanes per row in the row reductions
  using Acc = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;
  using FragA = wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major>;
  using FragKt = wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major>;
  using FragV = wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major>;
  constexpr int NE = Acc::num_elements;
  // wmma pointers must be 32-byte aligned: every row block below starts at a multiple of 32.
  static_assert((16 * LDQ * sizeof(T)) % 32 == 0 && (16 * LDP * sizeof(T)) % 32 == 0 &&
                    (16 * LDR * sizeof(float)) % 32 == 0 && Tile::kScratchBytes % 32 == 0,
                "wmma alignment");

  const int tid = threadIdx.x, lane = tid % kWarpSize, warp = tid / kWarpSize;
  VT_DYNAMIC_SHARED(unsigned char, smem);
  T* qs = reinterpret_cast<T*>(smem);  // [BM][LDQ] Q; at the end each warp's output rows
  T* ks = qs + BM * LDQ;               // [BN][LDQ]
  T* vs = ks + BN * LDQ;               // [BN][LDQ]
  unsigned char* scratch = reinterpret_cast<unsigned char*>(vs + BN * LDQ);
  float* red = reinterpret_cast<float*>(scratch + warp * Tile::kScratchBytes);          // [RPW][LDR]
  T* ps = reinterpret_cast<T*>(red);                                                    // [RPW][LDP]
  int64_t* s_rows = reinterpret_cast<int64_t*>(scratch + WARPS * Tile::kScratchBytes);  // [2][BN], -1: none
  float* s_max = reinterpret_cast<float*>(s_rows + 2 * BN) + warp * 2 * RPW;            // [RPW] max in P = 2^(x - max)
  float* s_scale = s_max + RPW;                                                         // [RPW] rescale of O, then 1/l

  const PrefillTile t = prefill_tile(p, BM);
  if (!t.valid) return;
  const int kv_head = blockIdx.y, seq = blockIdx.z;
  const int D = p.head_dim, nd16 = (D + 15) / 16, nvec = 2 * nd16;  // 16-byte vectors a staged row needs
  const int W = p.sliding_window;
  const int32_t* table = p.block_tables + int64_t(seq) * p.max_blocks_per_seq;
  const T* k_cache = static_cast<const T*>(p.k_cache);
  const T* v_cache = static_cast<const T*>(p.v_cache);
  auto key_row = [&](int key) -> int64_t { return key < t.key_end ? cache_row(p, table, key, kv_head) : -1; };

  // A key tile of K or V into shared memory, asynchronously: zeros for keys without a cache row
  // and for columns past head_dim (P V must not meet stale NaNs).
  auto stage = [&](T* dst, const T* cache, const int64_t* rows) {
    for (int idx = tid; idx < BN * VECS; idx += kPrefillThreads) {
      const int c = idx / VECS, vec = idx % VECS;
      if (vec >= nvec) continue;
      const int64_t row = rows[c];
      const bool ok = row >= 0 && vec * 8 < D;
      copy16_async(dst + c * LDQ + vec * 8, ok ? cache + row + vec * 8 : cache, ok);
    }
  };

  // The Q tile, zero past the rows and past head_dim: 16-byte copies joining K's first tile when q
  // and out are 16-byte aligned (their rows then are: head_dim % 8 == 0), element-wise if not.
  const bool vector_io =
      ((reinterpret_cast<uintptr_t>(p.q) | reinterpret_cast<uintptr_t>(p.out)) & 15) == 0 && p.q_row_stride % 8 == 0;
  const T* q = static_cast<const T*>(p.q);
  for (int idx = tid; idx < BM * VECS; idx += kPrefillThreads) {
    const int r = idx / VECS, vec = idx % VECS, row = t.r0 + r;
    if (vec >= nvec) continue;
    const bool ok = row < t.rows && vec * 8 < D;
    const T* src = ok ? q + int64_t(t.q_begin + row / p.group) * p.q_row_stride +
                            int64_t(kv_head * p.group + row % p.group) * D + vec * 8
                      : q;
    T* dst = qs + r * LDQ + vec * 8;
    if (vector_io) {
      copy16_async(dst, src, ok);
    } else {
#pragma unroll
      for (int e = 0; e < 8; e++) dst[e] = ok ? src[e] : from_float<T>(0.f);
    }
  }
  if (tid < BN) s_rows[tid] = key_row(t.key_begin + tid);

  // The (row, column) of each accumulator element, which CUDA leaves unspecified: each warp loads
  // a tile whose elements are 16 * row + column, and keeps them as bytes.
  unsigned rc[(NE + 3) / 4];
  {
    for (int i = lane; i < 256; i += kWarpSize) red[(i / 16) * LDR + i % 16] = float(i);
    __syncwarp();
    Acc f;
    wmma::load_matrix_sync(f, red, LDR, wmma::mem_row_major);
#pragma unroll
    for (int i = 0; i < (NE + 3) / 4; i++) rc[i] = 0;
#pragma unroll
    for (int i = 0; i < NE; i++) rc[i / 4] |= unsigned(f.x[i]) << (8 * (i % 4));
  }
  auto row_in = [&](int i) { return int(rc[i / 4] >> (8 * (i % 4) + 4) & 15u); };
  auto col_in = [&](int i) { return int(rc[i / 4] >> (8 * (i % 4)) & 15u); };

  // The warp's rows [w_r0, w_r0 + w_rows): some row sees keys [w_first_pos - W + 1, w_last_pos],
  // every row sees [w_last_pos - W + 1, w_first_pos] (no lower bound without a window, W <= 0).
  const int w_r0 = t.r0 + warp * RPW;
  const int w_rows = max(0, min(RPW, t.rows - w_r0));
  const int w_first_pos = t.first_pos + w_r0 / p.group;
  const int w_last_pos = t.first_pos + (w_r0 + max(w_rows, 1) - 1) / p.group;

  // Each row's running max and sum belong to LPR lanes (the accumulators hold only O). Scores are
  // kept in base 2 (scaled by log2(e) too): exp2 is the hardware's exponent.
  const int my_row = lane / LPR, sub = lane % LPR;
  const float scale_log2 = p.scale * 1.44269504f;
  float m = -INFINITY, l = 0.f;
  Acc o[RF][NF];
#pragma unroll
  for (int rf = 0; rf < RF; rf++)
#pragma unroll
    for (int j = 0; j < NF; j++) wmma::fill_fragment(o[rf][j], 0.f);

  __syncthreads();  // the first tile's rows
  stage(ks, k_cache, s_rows);
  __pipeline_commit();

  // Per key tile, K and V take turns: V(n) loads during S = Q K(n)^T and the softmax, K(n + 1)
  // during P V(n); each wait-and-barrier both lands a tile and frees the other buffer.
  for (int k0 = t.key_begin, n = 0; k0 < t.key_end; k0 += BN, n++) {
    const int64_t* rows = s_rows + (n & 1) * BN;
    int64_t* next_rows = s_rows + (~n & 1) * BN;
    const bool more = k0 + BN < t.key_end;
    const int64_t next_row = tid < BN && more ? key_row(k0 + BN + tid) : -1;
    __pipeline_wait_prior(0);
    __syncthreads();  // K(n) (and Q) in place; every warp is done with V(n - 1) and P
    stage(vs, v_cache, rows);
    __pipeline_commit();

    // Warp-uniform: tiles the warp's rows are all masked from are skipped, and only tiles some
    // row sees in part are masked element by element.
    const bool active = w_rows > 0 && k0 <= w_last_pos && (W <= 0 || k0 + BN > w_first_pos - W + 1);
    bool rescale = false;
    float corr = 1.f;  // this lane's row: the factor of its earlier terms
    if (active) {
      Acc s[RF][KF];
#pragma unroll
      for (int rf = 0; rf < RF; rf++)
#pragma unroll
        for (int kf = 0; kf < KF; kf++) wmma::fill_fragment(s[rf][kf], 0.f);
#pragma unroll
      for (int kd = 0; kd < NF; kd++) {
        if (kd < nd16) {
          FragA a[RF];
#pragma unroll
          for (int rf = 0; rf < RF; rf++)
            wmma::load_matrix_sync(a[rf], qs + (warp * RPW + rf * 16) * LDQ + kd * 16, LDQ);
#pragma unroll
          for (int kf = 0; kf < KF; kf++) {
            FragKt b;
            wmma::load_matrix_sync(b, ks + kf * 16 * LDQ + kd * 16, LDQ);
#pragma unroll
            for (int rf = 0; rf < RF; rf++) wmma::mma_sync(s[rf][kf], a[rf], b, s[rf][kf]);
          }
        }
      }

      uint64_t key_ok = 0;  // bit c: key k0 + c has a cache row
#pragma unroll
      for (int h = 0; h < BN / kWarpSize; h++)
        key_ok |= uint64_t(__ballot_sync(0xffffffffu, rows[h * kWarpSize + lane] >= 0)) << (h * kWarpSize);
      const bool whole =
          key_ok == ~0ull >> (64 - BN) && k0 + BN - 1 <= w_first_pos && (W <= 0 || k0 >= w_last_pos - W + 1);
      // Scaled scores (-inf where masked), and their maxima over the element's columns mod 16,
      // which LPR lanes per row then reduce: a 16-column round trip instead of BN.
#pragma unroll
      for (int rf = 0; rf < RF; rf++) {
        Acc part;
#pragma unroll
        for (int i = 0; i < NE; i++) {
          const int row = w_r0 + rf * 16 + row_in(i);
          float x_max = -INFINITY;
#pragma unroll
          for (int kf = 0; kf < KF; kf++) {
            // Soft-capping (Gemma 2) acts on the natural-base score, before the base change.
            float x = p.soft_cap > 0.f ? soft_cap_score(p, s[rf][kf].x[i] * p.scale) * 1.44269504f
                                       : s[rf][kf].x[i] * scale_log2;
            if (!whole) {
              // Causal (key <= position) and window tests on the row index: token = row / group.
              const int c = kf * 16 + col_in(i), key_rel = k0 + c - t.first_pos;
              const bool seen =
                  (key_ok >> c & 1) && key_rel * p.group <= row && (W <= 0 || row < (key_rel + W) * p.group);
              if (!seen) x = -INFINITY;
            }
            s[rf][kf].x[i] = x;
            x_max = fmaxf(x_max, x);
          }
          part.x[i] = x_max;
        }
        wmma::store_matrix_sync(red + rf * 16 * LDR, part, LDR, wmma::mem_row_major);
      }
      __syncwarp();
      float tile_max = -INFINITY;
#pragma unroll
      for (int c = 0; c < 16 / LPR; c += 4) {
        const float* v = red + my_row * LDR + sub * (16 / LPR) + c;
        VT_CHECK_ALIGNED(v, 16);
        const float4 x4 = *reinterpret_cast<const float4*>(v);
        tile_max = fmaxf(tile_max, fmaxf(fmaxf(x4.x, x4.y), fmaxf(x4.z, x4.w)));
      }
#pragma unroll
      for (int offset = 1; offset < LPR; offset *= 2)
        tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, offset));
      const float m_new = fmaxf(m, tile_max);
      corr = m_new == -INFINITY ? 1.f : exp2f(m - m_new);
      m = m_new;
      if (sub == 0) {
        s_max[my_row] = m_new == -INFINITY ? 0.f : m_new;
        s_scale[my_row] = corr;
      }
      rescale = __any_sync(0xffffffffu, corr != 1.f);  // else O's rescale is skipped
      __syncwarp();

      // P = 2^(x - max), converted once, into the scratch (the partials are read by now).
#pragma unroll
      for (int rf = 0; rf < RF; rf++)
#pragma unroll
        for (int i = 0; i < NE; i++) {
          const int r = rf * 16 + row_in(i), c = col_in(i);
          const float row_max = s_max[r];
#pragma unroll
          for (int kf = 0; kf < KF; kf++) ps[r * LDP + kf * 16 + c] = from_float<T>(exp2f(s[rf][kf].x[i] - row_max));
        }
    }
    if (tid < BN) next_rows[tid] = next_row;
    __pipeline_wait_prior(0);
    __syncthreads();  // V(n) in place; every warp is done with K(n); the next tile's rows are visible
    if (more) {
      stage(ks, k_cache, next_rows);
      __pipeline_commit();
    }

    if (active) {
      // The row sum, of P as P V will see it (rounded).
      float sum = 0.f;
#pragma unroll
      for (int c = 0; c < BN / LPR; c += 8) {
        const T* v = ps + my_row * LDP + sub * (BN / LPR) + c;
        VT_CHECK_ALIGNED(v, 16);
        float f[8];
        unpack(*reinterpret_cast<const uint4*>(v), f, TypeTag<T>{});
#pragma unroll
        for (int e = 0; e < 8; e++) sum += f[e];
      }
#pragma unroll
      for (int offset = 1; offset < LPR; offset *= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
      l = l * corr + sum;
      if (rescale)
#pragma unroll
        for (int rf = 0; rf < RF; rf++)
#pragma unroll
          for (int i = 0; i < NE; i++) {
            const float f = s_scale[rf * 16 + row_in(i)];
#pragma unroll
            for (int j = 0; j < NF; j++)
              if (j < nd16) o[rf][j].x[i] *= f;
          }
#pragma unroll
      for (int kf = 0; kf < KF; kf++) {
        FragA a[RF];
#pragma unroll
        for (int rf = 0; rf < RF; rf++) wmma::load_matrix_sync(a[rf], ps + rf * 16 * LDP + kf * 16, LDP);
#pragma unroll
        for (int j = 0; j < NF; j++) {
          if (j < nd16) {
            FragV b;
            wmma::load_matrix_sync(b, vs + kf * 16 * LDQ + j * 16, LDQ);
#pragma unroll
            for (int rf = 0; rf < RF; rf++) wmma::mma_sync(o[rf][j], a[rf], b, o[rf][j]);
          }
        }
      }
    }
  }
  if (w_rows == 0) return;

  // O / l as 16-bit into the warp's own Q rows (read for the last time in its last tile), then to
  // out a row at a time.
  __syncwarp();  // every lane has read the last rescale factors
  if (sub == 0) s_scale[my_row] = l > 0.f ? 1.f / l : 0.f;
  __syncwarp();
  T* staged = qs + warp * RPW * LDQ;
#pragma unroll
  for (int rf = 0; rf < RF; rf++)
#pragma unroll
    for (int i = 0; i < NE; i++) {
      const int r = rf * 16 + row_in(i), c = col_in(i);
      const float inv = s_scale[r];
#pragma unroll
      for (int j = 0; j < NF; j++)
        if (j < nd16) staged[r * LDQ + j * 16 + c] = from_float<T>(o[rf][j].x[i] * inv);
    }
  __syncwarp();
  T* out = static_cast<T*>(p.out);
  for (int idx = lane; idx < RPW * VECS; idx += kWarpSize) {
    const int r = idx / VECS, vec = idx % VECS, row = w_r0 + r;
    if (r >= w_rows || vec * 8 >= D) continue;
    const T* src = staged + r * LDQ + vec * 8;
    T* dst =
        out + (int64_t(t.q_begin + row / p.group) * p.num_q_heads + kv_head * p.group + row % p.group) * D + vec * 8;
    if (vector_io) {
      VT_CHECK_ALIGNED(src, 16);
      VT_CHECK_ALIGNED(dst, 16);
      *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
    } else {
#pragma unroll
      for (int e = 0; e < 8; e++) dst[e] = src[e];
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
      x[j] = ok ? soft_cap_score(p, dot * p.scale) : -INFINITY;
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
