// The Llama-family forward pass as a sequence of native ops over a batch that mixes prefill
// chunks and decodes (vLLM's flattened layout: all new tokens of all sequences in one row list):
//   embedding → N × (RMSNorm, QKV, [q/k norm], RoPE, write K/V, paged attention, O,
//   residual + RMSNorm, gate_up, SiLU·mul, down) → final norm → LM head on the selected rows.
import type { Address, Backend } from "../backend/backend.ts";
import { dtypeBytes, type DType } from "../backend/dtype.ts";
import type { ModelConfig } from "./config.ts";
import type { KvCacheTensors } from "./kv-cache-tensors.ts";
import type { ModelWeights } from "./weights.ts";

/** One step's batch, as the model runner builds it. Sequence s owns query rows
 * queryStartLoc[s] .. queryStartLoc[s+1]-1. */
export interface ForwardBatch {
  tokenIds: Int32Array;
  positions: Int32Array;
  /** Physical cache slot of each new token (block * blockSize + offset). */
  slotMapping: Int32Array;
  queryStartLoc: Int32Array;
  /** Tokens in the cache per sequence after this step (cached + new). */
  seqLens: Int32Array;
  /** [numSeqs, maxBlocksPerSeq] physical block ids. */
  blockTables: Int32Array;
  maxBlocksPerSeq: number;
  /** Rows whose logits are wanted (usually the last new token of each sequence). */
  logitsIndices: Int32Array;
}

/** Device scratch for one step's activations, grown to the largest batch seen. */
interface Workspace {
  capacityTokens: number;
  capacityLogits: number;
  base: Address;
  residual: Address;
  hidden: Address;
  normed: Address;
  qkv: Address;
  attention: Address;
  gateUp: Address;
  mlp: Address;
  selected: Address;
  logits: Address;
  /** int32 token ids chosen on the device. */
  sampled: Address;
}

export class ModelForward {
  private workspace: Workspace | null = null;
  private metadata: { address: Address; capacity: number } | null = null;
  private readonly cosSin: Address;
  private readonly qkvDim: number;

  constructor(
    private readonly backend: Backend,
    readonly config: ModelConfig,
    private readonly weights: ModelWeights,
    private readonly kvCache: KvCacheTensors,
    readonly actDtype: DType,
  ) {
    const { numHeads, numKvHeads, headDim, maxPositionEmbeddings, ropeScaling } = config;
    this.qkvDim = (numHeads + 2 * numKvHeads) * headDim;
    this.cosSin = backend.malloc(maxPositionEmbeddings * headDim * 4);
    backend.ropeCosSinCache({
      cosSin: this.cosSin,
      maxPosition: maxPositionEmbeddings,
      rotaryDim: headDim,
      theta: config.ropeTheta,
      llama3: ropeScaling && {
        factor: ropeScaling.factor,
        lowFreqFactor: ropeScaling.lowFreqFactor,
        highFreqFactor: ropeScaling.highFreqFactor,
        originalMaxPosition: ropeScaling.originalMaxPositionEmbeddings,
      },
    });
  }

  free(): void {
    if (this.workspace) this.backend.free(this.workspace.base);
    if (this.metadata) this.backend.free(this.metadata.address);
    this.backend.free(this.cosSin);
    this.workspace = null;
    this.metadata = null;
  }

  /** Runs the batch; returns the device address of logits [logitsIndices.length, vocab]
   * (actDtype), valid until the next call. */
  forward(batch: ForwardBatch): Address {
    const numTokens = batch.tokenIds.length;
    const numSeqs = batch.seqLens.length;
    const numLogits = batch.logitsIndices.length;
    if (numTokens === 0) throw new Error("forward: empty batch");
    const maxPosition = this.config.maxPositionEmbeddings;
    for (const p of batch.positions) {
      if (p < 0 || p >= maxPosition) throw new Error(`forward: position ${p} outside [0, ${maxPosition})`);
    }
    const ws = this.ensureWorkspace(numTokens, numLogits);
    const meta = this.uploadMetadata(batch);
    const b = this.backend;
    const c = this.config;
    const act = this.actDtype;
    const wd = this.weights.dtype;
    const eps = c.rmsNormEps;
    const h = c.hiddenSize;
    const qDim = c.numHeads * c.headDim;
    const kvDim = c.numKvHeads * c.headDim;
    const actBytes = dtypeBytes[act];
    let maxQueryLen = 0;
    let maxSeqLen = 0;
    for (let s = 0; s < numSeqs; s++) {
      maxQueryLen = Math.max(maxQueryLen, batch.queryStartLoc[s + 1]! - batch.queryStartLoc[s]!);
      maxSeqLen = Math.max(maxSeqLen, batch.seqLens[s]!);
    }

    b.embedding({
      tokenIds: meta.tokenIds, numTokens, table: this.weights.embed, vocabSize: c.vocabSize,
      hiddenSize: h, out: ws.residual, weightDtype: wd, actDtype: act,
    });
    this.weights.layers.forEach((layer, index) => {
      // The first layer normalizes the embedding; later ones add the previous layer's output
      // into the residual stream first (fused).
      b.rmsNorm({
        input: index === 0 ? ws.residual : ws.hidden, residual: index === 0 ? null : ws.residual,
        weight: layer.inputNorm, out: ws.normed, numTokens, hiddenSize: h, eps, actDtype: act, weightDtype: wd,
      });
      b.matmul({ x: ws.normed, w: layer.qkv, bias: layer.qkvBias, out: ws.qkv, m: numTokens, n: this.qkvDim, k: h, actDtype: act, weightDtype: wd });
      const q = ws.qkv;
      const k = ws.qkv + qDim * actBytes;
      const v = ws.qkv + (qDim + kvDim) * actBytes;
      if (layer.qNorm && layer.kNorm) {
        b.headRmsNorm({ x: q, weight: layer.qNorm, numTokens, numHeads: c.numHeads, headDim: c.headDim, rowStride: this.qkvDim, eps, actDtype: act, weightDtype: wd });
        b.headRmsNorm({ x: k, weight: layer.kNorm, numTokens, numHeads: c.numKvHeads, headDim: c.headDim, rowStride: this.qkvDim, eps, actDtype: act, weightDtype: wd });
      }
      b.rotaryEmbedding({
        positions: meta.positions, q, k, cosSin: this.cosSin, numTokens, numQHeads: c.numHeads,
        numKvHeads: c.numKvHeads, headDim: c.headDim, rotaryDim: c.headDim, rowStride: this.qkvDim, actDtype: act,
      });
      b.writeKvCache({
        k, v, kCache: this.kvCache.key(index), vCache: this.kvCache.value(index), slotMapping: meta.slotMapping,
        numTokens, numKvHeads: c.numKvHeads, headDim: c.headDim, rowStride: this.qkvDim,
        blockSize: this.kvCache.blockSize, actDtype: act, cacheDtype: this.kvCache.dtype,
      });
      b.pagedAttention({
        out: ws.attention, q, kCache: this.kvCache.key(index), vCache: this.kvCache.value(index),
        blockTables: meta.blockTables, seqLens: meta.seqLens, queryStartLoc: meta.queryStartLoc, numSeqs,
        numTokens, maxQueryLen, maxSeqLen, maxBlocksPerSeq: batch.maxBlocksPerSeq, numQHeads: c.numHeads,
        numKvHeads: c.numKvHeads, headDim: c.headDim, qRowStride: this.qkvDim, blockSize: this.kvCache.blockSize,
        scale: 1 / Math.sqrt(c.headDim), slidingWindow: c.slidingWindow ?? 0, actDtype: act, cacheDtype: this.kvCache.dtype,
      });
      b.matmul({ x: ws.attention, w: layer.o, out: ws.hidden, m: numTokens, n: h, k: qDim, actDtype: act, weightDtype: wd });
      b.rmsNorm({
        input: ws.hidden, residual: ws.residual, weight: layer.postNorm, out: ws.normed, numTokens,
        hiddenSize: h, eps, actDtype: act, weightDtype: wd,
      });
      b.matmul({ x: ws.normed, w: layer.gateUp, out: ws.gateUp, m: numTokens, n: 2 * c.intermediateSize, k: h, actDtype: act, weightDtype: wd });
      b.siluAndMul({ x: ws.gateUp, out: ws.mlp, numTokens, d: c.intermediateSize, actDtype: act });
      b.matmul({ x: ws.mlp, w: layer.down, out: ws.hidden, m: numTokens, n: h, k: c.intermediateSize, actDtype: act, weightDtype: wd });
    });
    b.rmsNorm({
      input: ws.hidden, residual: ws.residual, weight: this.weights.finalNorm, out: ws.normed, numTokens,
      hiddenSize: h, eps, actDtype: act, weightDtype: wd,
    });
    if (numLogits === 0) return ws.logits;
    // Only the rows that are sampled go through the LM head, the largest matmul of a decode step.
    b.gatherRows({ dst: ws.selected, src: ws.normed, indices: meta.logitsIndices, numRows: numLogits, rowBytes: h * actBytes });
    b.matmul({ x: ws.selected, w: this.weights.lmHead, out: ws.logits, m: numLogits, n: c.vocabSize, k: h, actDtype: act, weightDtype: wd });
    return ws.logits;
  }

  /** The logits of the selected rows, downloaded as f32 [numLogits * vocab]. */
  logits(batch: ForwardBatch): Float32Array {
    const logits = this.forward(batch);
    const count = batch.logitsIndices.length * this.config.vocabSize;
    if (this.actDtype === "f32") return this.backend.download(new Float32Array(count), logits);
    const scratch = this.backend.malloc(count * 4);
    try {
      this.backend.convert(scratch, "f32", logits, this.actDtype, count);
      return this.backend.download(new Float32Array(count), scratch);
    } finally {
      this.backend.free(scratch);
    }
  }

  /** Greedy next tokens of the selected rows, computed on the device. */
  greedy(batch: ForwardBatch): Int32Array {
    const logits = this.forward(batch);
    const ids = this.workspace!.sampled;
    this.backend.argmax({ logits, out: ids, numRows: batch.logitsIndices.length, vocabSize: this.config.vocabSize, actDtype: this.actDtype });
    return this.backend.download(new Int32Array(batch.logitsIndices.length), ids);
  }

  private ensureWorkspace(numTokens: number, numLogits: number): Workspace {
    const current = this.workspace;
    if (current && current.capacityTokens >= numTokens && current.capacityLogits >= numLogits) return current;
    if (current) this.backend.free(current.base);
    const c = this.config;
    const capacityTokens = Math.max(numTokens, current?.capacityTokens ?? 0);
    const capacityLogits = Math.max(numLogits, current?.capacityLogits ?? 0);
    const bytes = dtypeBytes[this.actDtype];
    // 256-byte aligned slices of one allocation.
    const sizes = {
      residual: capacityTokens * c.hiddenSize,
      hidden: capacityTokens * c.hiddenSize,
      normed: capacityTokens * c.hiddenSize,
      qkv: capacityTokens * this.qkvDim,
      attention: capacityTokens * c.numHeads * c.headDim,
      gateUp: capacityTokens * 2 * c.intermediateSize,
      mlp: capacityTokens * c.intermediateSize,
      selected: capacityLogits * c.hiddenSize,
      logits: capacityLogits * c.vocabSize,
      sampled: (capacityLogits * 4) / bytes,
    };
    const align = (n: number) => Math.ceil(n / 256) * 256;
    const total = Object.values(sizes).reduce((sum, n) => sum + align(n * bytes), 0);
    const base = this.backend.malloc(total);
    let offset = 0;
    const slice = (n: number) => {
      const address = base + offset;
      offset += align(n * bytes);
      return address;
    };
    this.workspace = {
      capacityTokens,
      capacityLogits,
      base,
      residual: slice(sizes.residual),
      hidden: slice(sizes.hidden),
      normed: slice(sizes.normed),
      qkv: slice(sizes.qkv),
      attention: slice(sizes.attention),
      gateUp: slice(sizes.gateUp),
      mlp: slice(sizes.mlp),
      selected: slice(sizes.selected),
      logits: slice(sizes.logits),
      sampled: slice(sizes.sampled),
    };
    return this.workspace;
  }

  /** All index arrays of the step in one upload; returns each array's device address. */
  private uploadMetadata(batch: ForwardBatch) {
    const parts = [
      batch.tokenIds, batch.positions, batch.slotMapping, batch.queryStartLoc, batch.seqLens,
      batch.blockTables, batch.logitsIndices,
    ];
    const total = parts.reduce((sum, p) => sum + p.length, 0);
    if (!this.metadata || this.metadata.capacity < total) {
      if (this.metadata) this.backend.free(this.metadata.address);
      const capacity = Math.max(total, 2 * (this.metadata?.capacity ?? 0));
      this.metadata = { address: this.backend.malloc(capacity * 4), capacity };
    }
    const packed = new Int32Array(total);
    const addresses: Address[] = [];
    let offset = 0;
    for (const p of parts) {
      packed.set(p, offset);
      addresses.push(this.metadata.address + offset * 4);
      offset += p.length;
    }
    this.backend.upload(this.metadata.address, packed);
    const [tokenIds, positions, slotMapping, queryStartLoc, seqLens, blockTables, logitsIndices] = addresses as [
      Address, Address, Address, Address, Address, Address, Address,
    ];
    return { tokenIds, positions, slotMapping, queryStartLoc, seqLens, blockTables, logitsIndices };
  }
}
