// The paged KV cache's device memory: for every layer a K and a V tensor of
// [numBlocks, blockSize, numKvHeads, headDim], laid out as 2 * numLayers planes of one
// allocation so block copies and swaps treat all layers in one call.
import { type Address, offsetAddress } from "../backend/address.ts";
import type { Backend } from "../backend/backend.ts";
import { type DType, dtypeBytes } from "../backend/dtype.ts";
import type { ModelConfig } from "../model/config.ts";

export class KvCacheTensors {
  readonly blockBytes: number;
  readonly planeStrideBytes: number;
  readonly numPlanes: number;

  private constructor(
    private readonly backend: Backend,
    readonly base: Address,
    readonly numBlocks: number,
    readonly blockSize: number,
    readonly numKvHeads: number,
    readonly headDim: number,
    numLayers: number,
    readonly dtype: DType,
  ) {
    this.blockBytes = blockSize * numKvHeads * headDim * dtypeBytes(dtype);
    this.planeStrideBytes = numBlocks * this.blockBytes;
    this.numPlanes = 2 * numLayers;
  }

  /** Bytes one block takes across all layers, K and V: what the memory budget is divided by. */
  static bytesPerBlock(config: ModelConfig, blockSize: number, dtype: DType): number {
    return 2 * config.numLayers * blockSize * config.numKvHeads * config.headDim * dtypeBytes(dtype);
  }

  static allocate(backend: Backend, config: ModelConfig, numBlocks: number, blockSize: number, dtype: DType) {
    const bytes = numBlocks * KvCacheTensors.bytesPerBlock(config, blockSize, dtype);
    const base = backend.malloc(bytes);
    return new KvCacheTensors(
      backend,
      base,
      numBlocks,
      blockSize,
      config.numKvHeads,
      config.headDim,
      config.numLayers,
      dtype,
    );
  }

  key(layer: number): Address {
    return offsetAddress(this.base, 2 * layer * this.planeStrideBytes);
  }

  value(layer: number): Address {
    return offsetAddress(this.base, (2 * layer + 1) * this.planeStrideBytes);
  }

  free(): void {
    this.backend.free(this.base);
  }
}
