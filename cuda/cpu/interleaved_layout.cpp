// Packing quantized matrices into the CPU's layout (interleaved_quant.h), and widening a short last
// group for the kernels.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "interleaved_quant.h"
#include "quant.h"

namespace vt::cpu::interleaved {

namespace {
constexpr Layout kQ8_0 = q8_0_layout();
constexpr Layout kQ4_0 = q4_x_layout(false, false);
constexpr Layout kQ4_1 = q4_x_layout(true, false);
constexpr Layout kQ5_0 = q4_x_layout(false, true);
constexpr Layout kQ5_1 = q4_x_layout(true, true);
constexpr Layout kQ4_K = q45_k_layout(false);
constexpr Layout kQ5_K = q45_k_layout(true);
constexpr Layout kQ6_K = q6_k_layout();
}  // namespace

const Layout& layout_of(vt_dtype type) {
  switch (type) {
    case VT_Q8_0:
      return kQ8_0;
    case VT_Q4_0:
      return kQ4_0;
    case VT_Q4_1:
      return kQ4_1;
    case VT_Q5_0:
      return kQ5_0;
    case VT_Q5_1:
      return kQ5_1;
    case VT_Q4_K:
      return kQ4_K;
    case VT_Q5_K:
      return kQ5_K;
    default:
      return kQ6_K;
  }
}

void pack_matrix(uint8_t* w, int n, int k, vt_dtype type, int threads) {
  const Layout* layout = &layout_of(type);
  const int block_bytes = vt::quant::block_bytes(type);
  const int blocks = k / vt::quant::block_elements(type);
  const size_t row_bytes = size_t(blocks) * size_t(block_bytes);
  const int groups = (n + kGroupRows - 1) / kGroupRows;
  // A group's rows are contiguous before and after: each group is rearranged from a copy of itself.
#pragma omp parallel num_threads(threads)
  {
    std::vector<uint8_t> rows_copy(kGroupRows * row_bytes);
#pragma omp for schedule(static)
    for (int g = 0; g < groups; g++) {
      const int rows = std::min(kGroupRows, n - g * kGroupRows);
      uint8_t* group = w + size_t(g) * kGroupRows * row_bytes;
      std::memcpy(rows_copy.data(), group, rows * row_bytes);
      for (int b = 0; b < blocks; b++) {
        uint8_t* slab_to = group + size_t(b) * rows * block_bytes;
        for (int s = 0; s < layout->count; slab_to += layout->slabs[s].width * rows, s++) {
          const Slab slab = layout->slabs[s];
          const bool flip = layout->flip_sign && s > 0;
          for (int r = 0; r < rows; r++) {
            const uint8_t* from = rows_copy.data() + r * row_bytes + size_t(b) * block_bytes + slab.source;
            for (int t = 0; t < slab.width; t++) slab_to[r * slab.width + t] = flip ? from[t] ^ 0x80 : from[t];
          }
        }
      }
    }
  }
}

void widen_block(const uint8_t* block, int rows, const Layout& layout, int block_bytes, uint8_t* out) {
  std::memset(out, 0, size_t(kGroupRows) * block_bytes);
  for (int s = 0, from = 0, to = 0; s < layout.count; s++) {
    const int width = layout.slabs[s].width;
    std::memcpy(out + to, block + from, size_t(width) * rows);
    from += width * rows;
    to += width * kGroupRows;
  }
}

}  // namespace vt::cpu::interleaved
