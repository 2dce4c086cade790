// Plain reference of vt_matmul: out[m, n] = x[m, k] · w[n, k]^T + bias[n] (w in nn.Linear's
// [out, in] layout), accumulated in f64 and rounded to f32 once, as the native op stores f32.

export function referenceMatmul(
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | null,
  m: number,
  n: number,
  k: number,
): Float32Array {
  if (x.length !== m * k) throw new Error(`referenceMatmul: x has ${x.length} elements, expected m*k = ${m * k}`);
  if (w.length !== n * k) throw new Error(`referenceMatmul: w has ${w.length} elements, expected n*k = ${n * k}`);
  if (bias && bias.length !== n)
    throw new Error(`referenceMatmul: bias has ${bias.length} elements, expected n = ${n}`);
  const out = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = bias ? bias[j]! : 0;
      for (let q = 0; q < k; q++) sum += x[i * k + q]! * w[j * k + q]!;
      out[i * n + j] = sum;
    }
  }
  return out;
}
