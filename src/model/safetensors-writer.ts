// Writes f32 values as a safetensors file in F32, F16 or BF16 (rounded to nearest even), for
// test models and tools that produce checkpoints.

import { DTYPES, type DType, encodeFromF32 } from "../backend/dtype.ts";

export interface TensorToWrite {
  dtype: DType;
  shape: number[];
  data: Float32Array;
}

export async function writeSafetensors(path: string, tensors: Record<string, TensorToWrite>): Promise<void> {
  const header: Record<string, unknown> = {};
  const chunks: Uint8Array<ArrayBuffer>[] = [];
  let offset = 0;
  for (const [name, { dtype, shape, data }] of Object.entries(tensors)) {
    const count = shape.reduce((product, dim) => product * dim, 1);
    if (count !== data.length) {
      throw new Error(`writeSafetensors: tensor "${name}" has shape [${shape.join(", ")}] but ${data.length} values`);
    }
    const bytes = encodeFromF32(data, dtype);
    header[name] = { dtype: DTYPES[dtype].safetensors, shape, data_offsets: [offset, offset + bytes.byteLength] };
    chunks.push(bytes);
    offset += bytes.byteLength;
  }
  // Padded to 8 bytes, as the reference writer does, so the data section starts aligned.
  let headerText = JSON.stringify(header);
  headerText += " ".repeat((8 - (Buffer.byteLength(headerText) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(headerText);
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  await Bun.write(path, new Blob([prefix, headerBytes, ...chunks]));
}
