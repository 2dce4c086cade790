// llama.cpp's converter reorders the rows of a Llama model's q and k projections within each
// head (reshape(heads, 2, head_dim / 2, ...) then swap axes 1 and 2), so that its RoPE can rotate
// adjacent pairs; the engine rotates halves, as transformers does, and needs the original order.
// Only whole rows move, so this works on any row layout, quantized blocks included.

/**
 * The rows of `bytes` (`rows` rows, `heads` heads of rows / heads rows each) back in Hugging Face
 * order: the converter's row h*D + 2j + t holds Hugging Face row h*D + t*D/2 + j.
 */
export function unpermuteLlamaQkRows(bytes: Uint8Array, rows: number, heads: number): Uint8Array {
  const headDim = rows / heads;
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) {
    throw new RangeError(`${rows} rows do not split into ${heads} heads of an even size`);
  }
  const rowBytes = bytes.byteLength / rows;
  const half = headDim / 2;
  const out = new Uint8Array(bytes.byteLength);
  for (let head = 0; head < heads; head++) {
    const base = head * headDim;
    for (let j = 0; j < half; j++) {
      for (let t = 0; t < 2; t++) {
        const from = (base + 2 * j + t) * rowBytes;
        const to = (base + t * half + j) * rowBytes;
        out.set(bytes.subarray(from, from + rowBytes), to);
      }
    }
  }
  return out;
}
