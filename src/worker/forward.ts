// The Llama-family forward pass as a sequence of native ops over a batch that mixes prefill
// chunks and decodes (vLLM's flattened layout: all new tokens of all sequences in one row list):
//   embedding [× scale] → N × (RMSNorm, QKV, [q/k norm], RoPE, write K/V, paged attention, O,
//   [RMSNorm], residual + RMSNorm, gate_up, SiLU·mul or GELU·mul, down, [RMSNorm]) → final norm →
//   LM head on the selected rows [→ soft cap]. The bracketed steps are Gemma's.
import { type Address, offsetAddress } from "../backend/address.ts";
import type { Backend } from "../backend/backend.ts";
import { type DType, dtypeBytes, roundToDtype } from "../backend/dtype.ts";
import { GrowableBuffer } from "../backend/growable-buffer.ts";
import type { PendingBitmask, TokenBitmask } from "../engine/structured-output/token-bitmask.ts";
import { layerRope, layerSlidingWindow, type ModelConfig } from "../model/config.ts";
import type { ExpertWeights, ModelWeights, SharedExpertWeights } from "../model/weights.ts";
import type { KvCacheTensors } from "./kv-cache-tensors.ts";

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

/** The sizes that fix a step's launches (a captured graph replays exactly these). */
export interface BatchShape {
  numTokens: number;
  numSeqs: number;
  numLogits: number;
  maxQueryLen: number;
  /** An upper bound of every sequence's length (graphs use their bucket's bound). */
  maxSeqLen: number;
  maxBlocksPerSeq: number;
}

/** Device addresses of a step's index arrays (see ForwardBatch). */
export interface DeviceBatch {
  tokenIds: Address;
  positions: Address;
  slotMapping: Address;
  queryStartLoc: Address;
  seqLens: Address;
  blockTables: Address;
  logitsIndices: Address;
}

/** Per-row sampling parameters for vt_sample; temperature 0 means greedy. */
export interface DeviceSamplingParams {
  temperatures: Float32Array;
  topK: Int32Array;
  topP: Float32Array;
  minP: Float32Array;
  /** One draw in [0, 1) per row from the request's own generator. */
  uniforms: Float32Array;
}

/** Device addresses of DeviceSamplingParams' arrays and of the int32 token ids vt_sample writes. */
export interface DeviceSamplingBuffers {
  temperatures: Address;
  topK: Address;
  topP: Address;
  minP: Address;
  uniforms: Address;
  out: Address;
}

export function batchShape(batch: ForwardBatch): BatchShape {
  const numSeqs = batch.seqLens.length;
  let maxQueryLen = 0;
  let maxSeqLen = 0;
  for (let s = 0; s < numSeqs; s++) {
    maxQueryLen = Math.max(maxQueryLen, batch.queryStartLoc[s + 1]! - batch.queryStartLoc[s]!);
    maxSeqLen = Math.max(maxSeqLen, batch.seqLens[s]!);
  }
  return {
    numTokens: batch.tokenIds.length,
    numSeqs,
    numLogits: batch.logitsIndices.length,
    maxQueryLen,
    maxSeqLen,
    maxBlocksPerSeq: batch.maxBlocksPerSeq,
  };
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
  /** A sparse layer's router logits [tokens, experts] and its slots' buffers (expertSlices). */
  routerLogits: Address;
  /** int32 [tokens, top_k]. */
  expertIds: Address;
  /** f32 [tokens, top_k]. */
  expertWeights: Address;
  /** int32 [tokens * top_k]. */
  sortedSlots: Address;
  /** int32 [experts + 1]. */
  expertOffsets: Address;
  slotGateUp: Address;
  slotMlp: Address;
  slotDown: Address;
  /** Qwen2-MoE's shared expert: its output [tokens, hidden] and gate logits [tokens]. */
  sharedOut: Address;
  sharedGate: Address;
  selected: Address;
  logits: Address;
  /** int32 token ids chosen on the device. */
  sampled: Address;
}

export class ModelForward {
  private workspace: Workspace | null = null;
  /** Each step's index arrays (and sampling parameters), uploaded in one copy. */
  private readonly metadata: GrowableBuffer;
  /** Device scratch of logits(), logSoftmaxRows(). */
  private readonly scratch: GrowableBuffer;
  /** The step's grammar masks and their row indices. */
  private readonly masks: GrowableBuffer;
  /** Bumps whenever the workspace moves, which invalidates graphs that captured its addresses. */
  workspaceVersion = 0;
  /** Each layer's rotary table: one per distinct RoPE (Gemma 3's sliding and global layers differ). */
  private readonly cosSinByLayer: Address[];
  private readonly cosSinTables: Address[];
  private readonly qkvDim: number;

  constructor(
    private readonly backend: Backend,
    readonly config: ModelConfig,
    private readonly weights: ModelWeights,
    private readonly kvCache: KvCacheTensors,
    readonly actDtype: DType,
  ) {
    this.metadata = new GrowableBuffer(backend);
    this.scratch = new GrowableBuffer(backend);
    this.masks = new GrowableBuffer(backend);
    const { numHeads, numKvHeads, headDim, maxPositionEmbeddings, rotaryDim } = config;
    this.qkvDim = (numHeads + 2 * numKvHeads) * headDim;
    const tables = new Map<string, Address>();
    this.cosSinByLayer = Array.from({ length: config.numLayers }, (_, layer) => {
      const rope = layerRope(config, layer);
      const key = JSON.stringify(rope);
      const existing = tables.get(key);
      if (existing !== undefined) return existing;
      const cosSin = backend.malloc(maxPositionEmbeddings * rotaryDim * 4);
      backend.ropeCosSinCache({ cosSin, maxPosition: maxPositionEmbeddings, rotaryDim, ...rope });
      tables.set(key, cosSin);
      return cosSin;
    });
    this.cosSinTables = [...tables.values()];
  }

  free(): void {
    if (this.workspace) this.backend.free(this.workspace.base);
    this.metadata.free();
    this.scratch.free();
    this.masks.free();
    for (const table of this.cosSinTables) this.backend.free(table);
    this.workspace = null;
  }

  /** Runs the batch; returns the device address of logits [logitsIndices.length, vocab]
   * (actDtype), valid until the next call. */
  forward(batch: ForwardBatch): Address {
    this.checkPositions(batch.positions);
    const shape = batchShape(batch);
    if (shape.numTokens === 0) throw new Error("forward: empty batch");
    this.reserve(shape.numTokens, shape.numLogits);
    return this.enqueue(this.uploadMetadata(batch), shape);
  }

  checkPositions(positions: Int32Array): void {
    const maxPosition = this.config.maxPositionEmbeddings;
    for (const p of positions) {
      if (p < 0 || p >= maxPosition) throw new Error(`forward: position ${p} outside [0, ${maxPosition})`);
    }
  }

  /** Grows the activation workspace to hold a step of this size (before a graph captures it). */
  reserve(numTokens: number, numLogits: number): void {
    this.ensureWorkspace(numTokens, numLogits);
  }

  /**
   * Enqueues the whole forward pass over index arrays already on the device, without touching
   * the host: this is what a graph captures. The workspace must hold the shape (reserve).
   * Returns the logits' device address.
   */
  enqueue(meta: DeviceBatch, shape: BatchShape): Address {
    const { numTokens, numSeqs, numLogits, maxQueryLen, maxSeqLen, maxBlocksPerSeq } = shape;
    const ws = this.workspace!;
    const b = this.backend;
    const c = this.config;
    const act = this.actDtype;
    const wd = this.weights.dtype;
    const nd = this.weights.normDtype;
    const eps = c.rmsNormEps;
    const h = c.hiddenSize;
    const qDim = c.numHeads * c.headDim;
    const kvDim = c.numKvHeads * c.headDim;
    const actBytes = dtypeBytes(act);

    b.embedding({
      tokenIds: meta.tokenIds,
      numTokens,
      table: this.weights.embed,
      vocabSize: c.vocabSize,
      hiddenSize: h,
      // Rounded to the model's dtype first: transformers makes Gemma's normalizer a tensor of the
      // hidden states' dtype, the model's (the CPU's f32 activations must not make it finer).
      scale: c.embeddingScale === null ? 1 : roundToDtype(c.embeddingScale, wd),
      out: ws.residual,
      weightDtype: wd,
      actDtype: act,
    });
    this.weights.layers.forEach((layer, index) => {
      // The first layer normalizes the embedding; later ones add the previous layer's output
      // into the residual stream first (fused).
      b.rmsNorm({
        input: index === 0 ? ws.residual : ws.hidden,
        residual: index === 0 ? null : ws.residual,
        weight: layer.inputNorm,
        out: ws.normed,
        numTokens,
        hiddenSize: h,
        eps,
        actDtype: act,
        weightDtype: nd,
      });
      b.matmul({
        x: ws.normed,
        w: layer.qkv.address,
        bias: layer.qkvBias,
        out: ws.qkv,
        m: numTokens,
        n: this.qkvDim,
        k: h,
        actDtype: act,
        weightDtype: layer.qkv.format,
      });
      const q = ws.qkv;
      const k = offsetAddress(ws.qkv, qDim * actBytes);
      const v = offsetAddress(ws.qkv, (qDim + kvDim) * actBytes);
      if (layer.qNorm && layer.kNorm) {
        b.headRmsNorm({
          x: q,
          weight: layer.qNorm,
          numTokens,
          numHeads: c.numHeads,
          headDim: c.headDim,
          rowStride: this.qkvDim,
          eps,
          actDtype: act,
          weightDtype: nd,
        });
        b.headRmsNorm({
          x: k,
          weight: layer.kNorm,
          numTokens,
          numHeads: c.numKvHeads,
          headDim: c.headDim,
          rowStride: this.qkvDim,
          eps,
          actDtype: act,
          weightDtype: nd,
        });
      }
      b.rotaryEmbedding({
        positions: meta.positions,
        q,
        k,
        cosSin: this.cosSinByLayer[index]!,
        numTokens,
        numQHeads: c.numHeads,
        numKvHeads: c.numKvHeads,
        headDim: c.headDim,
        rotaryDim: c.rotaryDim,
        rowStride: this.qkvDim,
        actDtype: act,
      });
      b.writeKvCache({
        k,
        v,
        kCache: this.kvCache.key(index),
        vCache: this.kvCache.value(index),
        slotMapping: meta.slotMapping,
        numTokens,
        numKvHeads: c.numKvHeads,
        headDim: c.headDim,
        rowStride: this.qkvDim,
        blockSize: this.kvCache.blockSize,
        actDtype: act,
        cacheDtype: this.kvCache.dtype,
      });
      b.pagedAttention({
        out: ws.attention,
        q,
        kCache: this.kvCache.key(index),
        vCache: this.kvCache.value(index),
        blockTables: meta.blockTables,
        seqLens: meta.seqLens,
        queryStartLoc: meta.queryStartLoc,
        numSeqs,
        numTokens,
        maxQueryLen,
        maxSeqLen,
        maxBlocksPerSeq,
        numQHeads: c.numHeads,
        numKvHeads: c.numKvHeads,
        headDim: c.headDim,
        qRowStride: this.qkvDim,
        blockSize: this.kvCache.blockSize,
        scale: c.attentionScale,
        slidingWindow: layerSlidingWindow(c, index),
        softCap: c.attnLogitSoftcapping ?? 0,
        actDtype: act,
        cacheDtype: this.kvCache.dtype,
      });
      b.matmul({
        x: ws.attention,
        w: layer.o.address,
        out: ws.hidden,
        m: numTokens,
        n: h,
        k: qDim,
        actDtype: act,
        weightDtype: layer.o.format,
      });
      if (layer.attentionOutputNorm) this.normInPlace(ws.hidden, layer.attentionOutputNorm, numTokens);
      b.rmsNorm({
        input: ws.hidden,
        residual: ws.residual,
        weight: layer.mlpInputNorm,
        out: ws.normed,
        numTokens,
        hiddenSize: h,
        eps,
        actDtype: act,
        weightDtype: nd,
      });
      if (layer.experts) this.enqueueExperts(layer.experts, numTokens);
      else {
        b.matmul({
          x: ws.normed,
          w: layer.gateUp!.address,
          out: ws.gateUp,
          m: numTokens,
          n: 2 * c.intermediateSize,
          k: h,
          actDtype: act,
          weightDtype: layer.gateUp!.format,
        });
        const activation = { x: ws.gateUp, out: ws.mlp, numTokens, d: c.intermediateSize, actDtype: act };
        if (c.hiddenAct === "gelu_pytorch_tanh") b.geluTanhAndMul(activation);
        else b.siluAndMul(activation);
        b.matmul({
          x: ws.mlp,
          w: layer.down!.address,
          out: ws.hidden,
          m: numTokens,
          n: h,
          k: c.intermediateSize,
          actDtype: act,
          weightDtype: layer.down!.format,
        });
      }
      if (layer.mlpOutputNorm) this.normInPlace(ws.hidden, layer.mlpOutputNorm, numTokens);
    });
    b.rmsNorm({
      input: ws.hidden,
      residual: ws.residual,
      weight: this.weights.finalNorm,
      out: ws.normed,
      numTokens,
      hiddenSize: h,
      eps,
      actDtype: act,
      weightDtype: nd,
    });
    if (numLogits === 0) return ws.logits;
    // Only the rows that are sampled go through the LM head, the largest matmul of a decode step.
    b.gatherRows({
      dst: ws.selected,
      src: ws.normed,
      indices: meta.logitsIndices,
      numRows: numLogits,
      rowBytes: h * actBytes,
    });
    b.matmul({
      x: ws.selected,
      w: this.weights.lmHead.address,
      out: ws.logits,
      m: numLogits,
      n: c.vocabSize,
      k: h,
      actDtype: act,
      weightDtype: this.weights.lmHead.format,
    });
    const cap = c.finalLogitSoftcapping;
    if (cap !== null) b.softCap({ x: ws.logits, count: numLogits * c.vocabSize, cap, actDtype: act });
    return ws.logits;
  }

  /** RMSNorm of rows in place, without a residual add (Gemma's norms of sublayer outputs). */
  private normInPlace(rows: Address, weight: Address, numTokens: number): void {
    this.backend.rmsNorm({
      input: rows,
      residual: null,
      weight,
      out: rows,
      numTokens,
      hiddenSize: this.config.hiddenSize,
      eps: this.config.rmsNormEps,
      actDtype: this.actDtype,
      weightDtype: this.weights.normDtype,
    });
  }

  /**
   * The logits of the selected rows (masked if a bitmask is given), downloaded as f32
   * [numLogits * vocab]. A pending bitmask is awaited only once the forward pass is enqueued.
   */
  async logits(batch: ForwardBatch, bitmask: PendingBitmask = null): Promise<Float32Array> {
    const logits = this.forward(batch);
    this.applyBitmask(logits, batch.logitsIndices.length, await bitmask);
    const count = batch.logitsIndices.length * this.config.vocabSize;
    if (this.actDtype === "f32") return this.backend.download(new Float32Array(count), logits);
    const scratch = this.scratch.reserve(count * 4);
    this.backend.convert(scratch, "f32", logits, this.actDtype, count);
    return this.backend.download(new Float32Array(count), scratch);
  }

  /**
   * Next tokens of the selected rows drawn on the device (vt_sample), after the grammar masks if
   * any: only ids come back. A pending bitmask is awaited only once the forward pass is enqueued.
   */
  async sample(batch: ForwardBatch, params: DeviceSamplingParams, bitmask: PendingBitmask = null): Promise<Int32Array> {
    return (await this.launchSample(batch, params, bitmask))();
  }

  /** sample() without the wait: enqueues it all and returns what downloads the ids once they exist. */
  async launchSample(
    batch: ForwardBatch,
    params: DeviceSamplingParams,
    bitmask: PendingBitmask = null,
  ): Promise<() => Int32Array> {
    this.checkPositions(batch.positions);
    const shape = batchShape(batch);
    this.reserve(shape.numTokens, shape.numLogits);
    const step = packStep(batch, params);
    const base = this.metadata.reserve(step.packed.byteLength);
    this.backend.upload(base, step.packed);
    const { meta, sampling } = step.at(base);
    const logits = this.enqueue(meta, shape);
    this.applyBitmask(logits, shape.numLogits, await bitmask);
    this.enqueueSample(logits, shape.numLogits, sampling);
    return () => this.backend.download(new Int32Array(shape.numLogits), sampling.out);
  }

  /** Sets the logits of the tokens each mask forbids to -inf: only the masks cross to the device. */
  applyBitmask(logits: Address, numRows: number, bitmask: TokenBitmask | null): void {
    if (bitmask === null) return;
    const { rowIndices, words, wordsPerRow } = bitmask;
    const base = this.masks.reserve(words.byteLength + align256(rowIndices.byteLength));
    const indices = base;
    const bits = offsetAddress(base, align256(rowIndices.byteLength));
    this.backend.upload(indices, rowIndices);
    this.backend.upload(bits, words);
    this.backend.applyTokenBitmask({
      logits,
      numRows,
      vocabSize: this.config.vocabSize,
      actDtype: this.actDtype,
      bitmask: bits,
      wordsPerRow,
      rowIndices: indices,
      numMaskedRows: rowIndices.length,
    });
  }

  enqueueSample(logits: Address, numRows: number, buffers: DeviceSamplingBuffers): void {
    this.backend.sample({
      logits,
      numRows,
      vocabSize: this.config.vocabSize,
      actDtype: this.actDtype,
      ...buffers,
    });
  }

  /**
   * log_softmax of some rows of the last step's logits (forward or replayed graph: both leave
   * them in the workspace), computed on the device; only these rows come back, as f32.
   */
  logSoftmaxRows(rows: readonly number[]): Float32Array {
    const vocab = this.config.vocabSize;
    const count = rows.length;
    const b = this.backend;
    const rowBytes = vocab * dtypeBytes(this.actDtype);
    // One scratch, 256-byte aligned parts: the f32 results, the row indices, the gathered rows.
    const out = this.scratch.reserve(align256(count * vocab * 4) + align256(count * 4) + count * rowBytes);
    const indices = offsetAddress(out, align256(count * vocab * 4));
    const selected = offsetAddress(indices, align256(count * 4));
    b.upload(indices, Int32Array.from(rows));
    b.gatherRows({ dst: selected, src: this.workspace!.logits, indices, numRows: count, rowBytes });
    b.logSoftmax({
      logits: selected,
      temperatures: null,
      out,
      numRows: count,
      vocabSize: vocab,
      actDtype: this.actDtype,
    });
    return b.download(new Float32Array(count * vocab), out);
  }

  /** Greedy next tokens of the selected rows, computed on the device. */
  greedy(batch: ForwardBatch): Int32Array {
    const logits = this.forward(batch);
    const ids = this.workspace!.sampled;
    this.backend.argmax({
      logits,
      out: ids,
      numRows: batch.logitsIndices.length,
      vocabSize: this.config.vocabSize,
      actDtype: this.actDtype,
    });
    return this.backend.download(new Int32Array(batch.logitsIndices.length), ids);
  }

  /**
   * A sparse layer's MLP, from ws.normed to ws.hidden: the router's logits, each token's top-k
   * experts, the slots (token, choice) grouped by expert, every used expert's gate_up and down
   * over its slots in one call each, and the slots summed back per token with their weights.
   */
  private enqueueExperts(experts: ExpertWeights, numTokens: number): void {
    const b = this.backend;
    const ws = this.workspace!;
    const moe = this.config.moe!;
    const { numExperts, topK, expertIntermediateSize: width } = moe;
    const h = this.config.hiddenSize;
    const act = this.actDtype;
    const numSlots = numTokens * topK;
    b.matmul({
      x: ws.normed,
      w: experts.router,
      out: ws.routerLogits,
      m: numTokens,
      n: numExperts,
      k: h,
      actDtype: act,
      weightDtype: this.weights.dtype,
    });
    b.moeRoute({
      logits: ws.routerLogits,
      numTokens,
      numExperts,
      topK,
      renormalize: moe.normTopkProb,
      actDtype: act,
      expertIds: ws.expertIds,
      weights: ws.expertWeights,
    });
    const groups = { sortedSlots: ws.sortedSlots, expertOffsets: ws.expertOffsets };
    b.moeGroup({ expertIds: ws.expertIds, numSlots, numExperts, ...groups });
    const common = { ...groups, numSlots, numExperts, actDtype: act };
    b.moeMatmul({
      ...common,
      x: ws.normed,
      slotsPerXRow: topK,
      w: experts.gateUp.address,
      out: ws.slotGateUp,
      n: 2 * width,
      k: h,
      weightDtype: experts.gateUp.format,
    });
    b.siluAndMul({ x: ws.slotGateUp, out: ws.slotMlp, numTokens: numSlots, d: width, actDtype: act });
    b.moeMatmul({
      ...common,
      x: ws.slotMlp,
      slotsPerXRow: 1,
      w: experts.down.address,
      out: ws.slotDown,
      n: h,
      k: width,
      weightDtype: experts.down.format,
    });
    const shared = experts.sharedExpert && this.enqueueSharedExpert(experts.sharedExpert, numTokens);
    b.moeCombine({
      x: ws.slotDown,
      weights: ws.expertWeights,
      shared,
      out: ws.hidden,
      numTokens,
      topK,
      d: h,
      actDtype: act,
    });
  }

  /**
   * Qwen2-MoE's shared expert on ws.normed: its MLP's output into ws.sharedOut and its gate's
   * logit per token into ws.sharedGate, which vt_moe_combine adds to the routed experts' sum.
   */
  private enqueueSharedExpert(shared: SharedExpertWeights, numTokens: number): { x: Address; gate: Address } {
    const b = this.backend;
    const ws = this.workspace!;
    const width = this.config.moe!.sharedExpertIntermediateSize!;
    const h = this.config.hiddenSize;
    const act = this.actDtype;
    b.matmul({
      x: ws.normed,
      w: shared.gateUp.address,
      out: ws.gateUp,
      m: numTokens,
      n: 2 * width,
      k: h,
      actDtype: act,
      weightDtype: shared.gateUp.format,
    });
    b.siluAndMul({ x: ws.gateUp, out: ws.mlp, numTokens, d: width, actDtype: act });
    b.matmul({
      x: ws.mlp,
      w: shared.down.address,
      out: ws.sharedOut,
      m: numTokens,
      n: h,
      k: width,
      actDtype: act,
      weightDtype: shared.down.format,
    });
    b.matmul({
      x: ws.normed,
      w: shared.gate,
      out: ws.sharedGate,
      m: numTokens,
      n: 1,
      k: h,
      actDtype: act,
      weightDtype: this.weights.dtype,
    });
    return { x: ws.sharedOut, gate: ws.sharedGate };
  }

  private ensureWorkspace(numTokens: number, numLogits: number): Workspace {
    const current = this.workspace;
    if (current && current.capacityTokens >= numTokens && current.capacityLogits >= numLogits) return current;
    if (current) this.backend.free(current.base);
    this.workspaceVersion++;
    const c = this.config;
    const capacityTokens = Math.max(numTokens, current?.capacityTokens ?? 0);
    const capacityLogits = Math.max(numLogits, current?.capacityLogits ?? 0);
    const bytes = dtypeBytes(this.actDtype);
    // 256-byte aligned slices of one allocation.
    const sizes = {
      residual: capacityTokens * c.hiddenSize,
      hidden: capacityTokens * c.hiddenSize,
      normed: capacityTokens * c.hiddenSize,
      qkv: capacityTokens * this.qkvDim,
      attention: capacityTokens * c.numHeads * c.headDim,
      // The dense MLP's buffers, which Qwen2-MoE's shared expert uses too.
      gateUp: capacityTokens * 2 * denseMlpWidth(c),
      mlp: capacityTokens * denseMlpWidth(c),
      ...expertSlices(c, capacityTokens, bytes),
      selected: capacityLogits * c.hiddenSize,
      logits: capacityLogits * c.vocabSize,
      sampled: (capacityLogits * 4) / bytes,
    };
    const total = Object.values(sizes).reduce((sum, n) => sum + align256(n * bytes), 0);
    const base = this.backend.malloc(total);
    let offset = 0;
    const slice = (n: number) => {
      const address = offsetAddress(base, offset);
      offset += align256(n * bytes);
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
      routerLogits: slice(sizes.routerLogits),
      expertIds: slice(sizes.expertIds),
      expertWeights: slice(sizes.expertWeights),
      sortedSlots: slice(sizes.sortedSlots),
      expertOffsets: slice(sizes.expertOffsets),
      slotGateUp: slice(sizes.slotGateUp),
      slotMlp: slice(sizes.slotMlp),
      slotDown: slice(sizes.slotDown),
      sharedOut: slice(sizes.sharedOut),
      sharedGate: slice(sizes.sharedGate),
      selected: slice(sizes.selected),
      logits: slice(sizes.logits),
      sampled: slice(sizes.sampled),
    };
    return this.workspace;
  }

  /** All index arrays of the step in one upload; returns each array's device address. */
  private uploadMetadata(batch: ForwardBatch): DeviceBatch {
    const { packed, at } = packForwardBatch(batch);
    const base = this.metadata.reserve(packed.byteLength);
    this.backend.upload(base, packed);
    return at(base);
  }
}

/** `bytes` rounded up to a multiple of 256 (CUDA's allocation alignment, kept for every slice). */
function align256(bytes: number): number {
  return Math.ceil(bytes / 256) * 256;
}

/** A batch's index arrays packed back to back for one upload, and their addresses once at `base`. */
export function packForwardBatch(batch: ForwardBatch): { packed: Int32Array; at: (base: Address) => DeviceBatch } {
  const parts = [
    batch.tokenIds,
    batch.positions,
    batch.slotMapping,
    batch.queryStartLoc,
    batch.seqLens,
    batch.blockTables,
    batch.logitsIndices,
  ];
  const packed = new Int32Array(parts.reduce((sum, p) => sum + p.length, 0));
  const offsets: number[] = [];
  let offset = 0;
  for (const p of parts) {
    packed.set(p, offset);
    offsets.push(offset * 4);
    offset += p.length;
  }
  const [tokenIds, positions, slotMapping, queryStartLoc, seqLens, blockTables, logitsIndices] = offsets as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  return {
    packed,
    at: (base) => {
      const at = (bytes: number) => offsetAddress(base, bytes);
      return {
        tokenIds: at(tokenIds),
        positions: at(positions),
        slotMapping: at(slotMapping),
        queryStartLoc: at(queryStartLoc),
        seqLens: at(seqLens),
        blockTables: at(blockTables),
        logitsIndices: at(logitsIndices),
      };
    },
  };
}

/**
 * A sampled step in one upload: the batch's index arrays, then the five sampling parameter arrays
 * (4 bytes each), then room for the int32 tokens vt_sample writes; and their addresses once the
 * packed array is at `base`.
 */
export function packStep(
  batch: ForwardBatch,
  params: DeviceSamplingParams,
): { packed: Int32Array; at: (base: Address) => { meta: DeviceBatch; sampling: DeviceSamplingBuffers } } {
  const index = packForwardBatch(batch);
  const rows = params.temperatures.length;
  const start = index.packed.length;
  const packed = new Int32Array(start + 6 * rows);
  const floats = new Float32Array(packed.buffer);
  packed.set(index.packed);
  floats.set(params.temperatures, start);
  packed.set(params.topK, start + rows);
  floats.set(params.topP, start + 2 * rows);
  floats.set(params.minP, start + 3 * rows);
  floats.set(params.uniforms, start + 4 * rows);
  return {
    packed,
    at: (base) => {
      // Array i of the six, each `rows` 4-byte values.
      const array = (i: number) => offsetAddress(base, 4 * (start + i * rows));
      return {
        meta: index.at(base),
        sampling: {
          temperatures: array(0),
          topK: array(1),
          topP: array(2),
          minP: array(3),
          uniforms: array(4),
          out: array(5),
        },
      };
    },
  };
}

/**
 * The widest MLP that runs densely (every token through it): a dense layer's, or the shared
 * expert of a sparse one; 0 when every layer is sparse without one.
 */
function denseMlpWidth(c: ModelConfig): number {
  const dense = c.moe === null || c.moe.sparseLayers.some((sparse) => !sparse) ? c.intermediateSize : 0;
  return Math.max(dense, c.moe?.sharedExpertIntermediateSize ?? 0);
}

/**
 * Sizes, in activation elements, of a sparse layer's buffers for `tokens` tokens (all 0 for a
 * dense model); the int32 and f32 arrays are counted in elements of `bytes` each.
 */
function expertSlices(c: ModelConfig, tokens: number, bytes: number) {
  const moe = c.moe;
  const experts = moe?.numExperts ?? 0;
  const slots = tokens * (moe?.topK ?? 0);
  const width = moe?.expertIntermediateSize ?? 0;
  const words = (count: number) => Math.ceil((count * 4) / bytes);
  return {
    routerLogits: tokens * experts,
    expertIds: words(slots),
    expertWeights: words(slots),
    sortedSlots: words(slots),
    expertOffsets: moe ? words(experts + 1) : 0,
    slotGateUp: slots * 2 * width,
    slotMlp: slots * width,
    slotDown: slots * c.hiddenSize,
    sharedOut: moe?.sharedExpertIntermediateSize ? tokens * c.hiddenSize : 0,
    sharedGate: moe?.sharedExpertIntermediateSize ? tokens : 0,
  };
}
