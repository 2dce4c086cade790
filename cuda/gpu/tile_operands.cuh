// Where gemm_tensor_core.cuh's tiles come from and where its outputs go: one thread's share of a
// staged ROWS x 32 tile, and the operands that fill and drain it.
//   x: DenseRows (rows row0.. of a matrix) or GatheredRows (rows picked by a list of slots: a
//      mixture-of-experts layer's tokens routed to one expert);
//   w: HalfWeights (16-bit rows as stored) or QuantizedWeights (rows of quantized blocks,
//      dequantized to the activations' dtype as they are staged);
//   out: DenseOutput (rows row0.. of out) or SlotOutput (the rows a list of slots names).
// The kernel calls only fetch and row, so a new kind of operand adds a struct here and nothing
// to the kernel.
#pragma once

#include "common.cuh"
#include "quant.h"
#include "vec.cuh"

namespace vt::gpu::matmul {

constexpr int kTcThreads = 256;
constexpr int kTcSlice = 32;                   // k per shared-memory stage
constexpr int kTcChunksPerRow = kTcSlice / 8;  // 16-byte chunks per staged row

// One thread's share of a staged ROWS x 32 tile: 16-byte chunks tid, tid + 256, ...
template <class T, int ROWS>
struct TileRegs {
  static constexpr int kChunks = ROWS * kTcChunksPerRow / kTcThreads;
  static_assert(kChunks >= 1 && ROWS * kTcChunksPerRow % kTcThreads == 0, "tile rows must fill the block");
  Pack<T, 8> chunk[kChunks];
  // The tile row and the k offset within the slice of chunk i of this thread.
  __device__ static int row_of(int i) { return (int(threadIdx.x) + i * kTcThreads) / kTcChunksPerRow; }
  __device__ static int column_of(int i) { return (int(threadIdx.x) + i * kTcThreads) % kTcChunksPerRow * 8; }
};

// Values q..q+7 of one row of k values (row null: a row past the matrix), zero past its end.
// kVectorLoads: k % 8 == 0 and the row 16-byte aligned, so a chunk is all inside or all past it.
template <bool kVectorLoads, class T>
__device__ __forceinline__ void fetch_chunk(const T* __restrict__ row, int q, int k, Pack<T, 8>& chunk) {
  const T zero = from_float<T>(0.0f);
  if constexpr (kVectorLoads) {
    if (row != nullptr && q < k) {
      VT_CHECK_ALIGNED(row + q, 16);
      chunk = *reinterpret_cast<const Pack<T, 8>*>(row + q);
    } else {
#pragma unroll
      for (int e = 0; e < 8; e++) chunk.v[e] = zero;
    }
  } else {
#pragma unroll
    for (int e = 0; e < 8; e++) chunk.v[e] = row != nullptr && q + e < k ? row[q + e] : zero;
  }
}

// Rows row0.. of x [rows, k].
template <class T>
struct DenseRows {
  const T* x;
  int rows;
  int row0;
  template <bool kVectorLoads, int ROWS>
  __device__ __forceinline__ void fetch(int k0, int k, TileRegs<T, ROWS>& regs) const {
#pragma unroll
    for (int i = 0; i < TileRegs<T, ROWS>::kChunks; i++) {
      const int r = row0 + TileRegs<T, ROWS>::row_of(i);
      fetch_chunk<kVectorLoads>(r < rows ? x + size_t(r) * size_t(k) : nullptr, k0 + TileRegs<T, ROWS>::column_of(i), k,
                                regs.chunk[i]);
    }
  }
};

// Tile row r is row slots[r] / slots_per_x_row of x [*, k], for r < count. Each thread finds the
// rows of its chunks once, when the operand is made, and keeps them for every slice.
template <class T, int ROWS>
struct GatheredRows {
  const T* row[TileRegs<T, ROWS>::kChunks];
  __device__ __forceinline__ GatheredRows(const T* x, int k, int slots_per_x_row, const int32_t* slots, int count) {
#pragma unroll
    for (int i = 0; i < TileRegs<T, ROWS>::kChunks; i++) {
      const int r = TileRegs<T, ROWS>::row_of(i);
      row[i] = r < count ? x + size_t(slots[r] / slots_per_x_row) * size_t(k) : nullptr;
    }
  }
  template <bool kVectorLoads>
  __device__ __forceinline__ void fetch(int k0, int k, TileRegs<T, ROWS>& regs) const {
#pragma unroll
    for (int i = 0; i < TileRegs<T, ROWS>::kChunks; i++)
      fetch_chunk<kVectorLoads>(row[i], k0 + TileRegs<T, ROWS>::column_of(i), k, regs.chunk[i]);
  }
};

// The w operand as stored: rows of k 16-bit values, read like x.
template <class T>
struct HalfWeights {
  const T* w;
  template <bool kVectorLoads, int ROWS>
  __device__ __forceinline__ void fetch(int n, int row0, int k0, int k, TileRegs<T, ROWS>& regs) const {
    DenseRows<T>{w, n, row0}.template fetch<kVectorLoads>(k0, k, regs);
  }
  // The matrix that starts `rows` rows further on (the next expert of a stacked tensor).
  __host__ __device__ HalfWeights skip_rows(size_t rows, int k) const { return {w + rows * size_t(k)}; }
};

// Rows of quantized blocks; each chunk (8 consecutive values of one row) is dequantized, its
// scales decoded once, and rounded to T. k is whole blocks, so no chunk straddles a row's end.
template <class T>
struct QuantizedWeights {
  const uint8_t* w;
  vt_dtype type;
  size_t row_bytes;
  template <bool, int ROWS>
  __device__ __forceinline__ void fetch(int n, int row0, int k0, int k, TileRegs<T, ROWS>& regs) const {
#pragma unroll
    for (int i = 0; i < TileRegs<T, ROWS>::kChunks; i++) {
      const int r = row0 + TileRegs<T, ROWS>::row_of(i);
      const int q = k0 + TileRegs<T, ROWS>::column_of(i);
      float values[8] = {};
      if (r < n && q < k) quant::dequantize_eight(type, w + size_t(r) * row_bytes, q, values);
#pragma unroll
      for (int e = 0; e < 8; e++) regs.chunk[i].v[e] = from_float<T>(values[e]);
    }
  }
  __host__ __device__ QuantizedWeights skip_rows(size_t rows, int) const {
    return {w + rows * row_bytes, type, row_bytes};
  }
};

// Tile row r goes to row row0 + r of out [rows, n].
template <class T>
struct DenseOutput {
  T* out;
  int rows;
  int row0;
  int n;
  __device__ __forceinline__ T* row(int r) const {
    return row0 + r < rows ? out + size_t(row0 + r) * size_t(n) : nullptr;
  }
};

// Tile row r goes to row slots[r] of out [*, n], for r < count.
template <class T>
struct SlotOutput {
  T* out;
  const int32_t* slots;
  int count;
  int n;
  __device__ __forceinline__ T* row(int r) const { return r < count ? out + size_t(slots[r]) * size_t(n) : nullptr; }
};

}  // namespace vt::gpu::matmul
