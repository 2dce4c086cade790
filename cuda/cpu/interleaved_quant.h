// The CPU's layout of quantized weight matrices (vt_pack_weights writes it, vt_matmul reads it):
// rows in groups of 16, and each of a group's blocks regrouped into slabs, a slab holding the
// same bytes of the 16 rows side by side. A slab of 4 quant bytes per row is one 512-bit vector
// with row r in lane r; a slab of 2-byte scales is 16 f16; a slab of 1 byte per row (the
// K-quants' sub-block scales) is 16 bytes. The matmul (interleaved_dot.cpp) then computes 16
// output columns at once: 4 int8 values of x are broadcast to every lane, VNNI's dpbusd adds 4
// products per lane, and each block's scales multiply vectors of 16 columns, with no horizontal
// sums and no per-column scale arithmetic (llama.cpp's CPU backend repacks its weights for the
// same reason). Slabs are in the order the kernels read them, so a block streams front to back.
//
// A matrix whose n is not a multiple of 16 ends with a group of R < 16 rows laid out with the
// same slabs, each R rows wide. Interleaving only moves bytes (and flips the sign bit of Q8_0's
// quants: stored as q + 128, the unsigned operand dpbusd wants), so the matrix keeps its size.
#pragma once

#include <cstddef>
#include <cstdint>

#include "quantized_activations.h"
#include "vllm_ts.h"

namespace vt::cpu::interleaved {

constexpr int kGroupRows = 16;

// One slab: `width` bytes of each row, from byte `source` of the row's block in llama.cpp's layout.
struct Slab {
  int width = 0, source = 0;
};

// A format's slabs in order. start(i, rows) is where slab i begins in a block of a group of
// `rows` rows.
struct Layout {
  Slab slabs[72] = {};
  int count = 0;
  bool flip_sign = false;  // Q8_0: quants stored as unsigned q + 128

  constexpr void add(int width, int source) { slabs[count++] = {width, source}; }
  constexpr int start(int slab, int rows) const {
    int offset = 0;
    for (int i = 0; i < slab; i++) offset += slabs[i].width * rows;
    return offset;
  }
};

// Q8_0: d, then the 32 quants 4 at a time (slab 1 + s holds values 4s..4s+3).
constexpr Layout q8_0_layout() {
  Layout l;
  l.add(2, 0);
  for (int s = 0; s < 8; s++) l.add(4, 2 + 4 * s);
  l.flip_sign = true;
  return l;
}

// The 32-value formats with 4-bit quants: d, the min (Q4_1, Q5_1), the 32 fifth bits as one
// 4-byte slab (Q5_0, Q5_1: bit i for value i), then the 16 quant bytes 4 at a time (the last 4
// slabs: slab s holds values 4s.. in the low nibbles, 16 + 4s.. in the high ones).
constexpr Layout q4_x_layout(bool min, bool fifth) {
  Layout l;
  l.add(2, 0);
  if (min) l.add(2, 2);
  const int quants = 2 + (min ? 2 : 0) + (fifth ? 4 : 0);
  if (fifth) l.add(4, quants - 4);
  for (int s = 0; s < 4; s++) l.add(4, quants + 4 * s);
  return l;
}

// Q4_K and Q5_K: d, dmin, the 12 bytes of 6-bit scales and mins one at a time (slabs 2..13),
// Q5_K's 32 bytes of fifth bits 4 at a time (slabs 14..21: byte l's bit j is chunk j's value l),
// then the 128 quant bytes 4 at a time (slab 8q + s of them: bytes 32q + 4s..; low nibbles are
// chunk 2q's values 4s.., high nibbles chunk 2q + 1's).
constexpr Layout q45_k_layout(bool fifth) {
  Layout l;
  l.add(2, 0);
  l.add(2, 2);
  for (int t = 0; t < 12; t++) l.add(1, 4 + t);
  if (fifth)
    for (int s = 0; s < 8; s++) l.add(4, 16 + 4 * s);
  for (int s = 0; s < 32; s++) l.add(4, (fifth ? 48 : 16) + 4 * s);
  return l;
}

// Q6_K: d, the 16 int8 scales one at a time (slabs 1..16), then for each half h of the
// super-block and each s < 8, in the order the kernel reads them: 4 bytes of the low bits at
// 64h + 4s (chunks 4h and 4h + 2), at 64h + 32 + 4s (chunks 4h + 1 and 4h + 3), and 4 bytes of the
// high bits at 32h + 4s (slabs 17 + 3(8h + s) ..).
constexpr Layout q6_k_layout() {
  Layout l;
  l.add(2, 208);
  for (int t = 0; t < 16; t++) l.add(1, 192 + t);
  for (int h = 0; h < 2; h++)
    for (int s = 0; s < 8; s++) {
      l.add(4, 64 * h + 4 * s);
      l.add(4, 64 * h + 32 + 4 * s);
      l.add(4, 128 + 32 * h + 4 * s);
    }
  return l;
}

// The interleaved layout of `type` (a quantized format).
const Layout& layout_of(vt_dtype type);

// Rearranges n rows of k values (blocks of `type`) into the interleaved layout, in place, on `threads`
// OpenMP threads.
void pack_matrix(uint8_t* w, int n, int k, vt_dtype type, int threads);

// Block b of a group of `rows` < 16 rows, widened to a 16-row block in `out` (the missing rows
// zero), so the kernels read every group alike.
void widen_block(const uint8_t* block, int rows, const Layout& layout, int block_bytes, uint8_t* out);

// out[i, j] = sum_q w[j, q] * x[i, q] (+ bias[j]) for every row i of x and the rows j of groups
// group_begin..group_end - 1 of w, an interleaved matrix of n rows (interleaved_dot.cpp); out rows are ldo
// apart.
void dot_groups(const QuantizedActivations& x, const uint8_t* w, vt_dtype type, int n, const float* bias, float* out,
                size_t ldo, int group_begin, int group_end);

}  // namespace vt::cpu::interleaved
