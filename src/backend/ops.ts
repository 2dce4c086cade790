// The compute ops of cuda/include/vllm_ts.h on one context: each a method taking named arguments,
// so call sites read like the header, in the header's order (the symbol table is generated from
// it, so an argument of the wrong count or type does not compile). A non-zero status becomes a
// NativeError carrying vt_last_error().
import type { Pointer } from "bun:ffi";
import { vt_copy_kind, vt_rope_scaling_type } from "../../build/vllm-ts-abi.ts";
import type { Address } from "./address.ts";
import type { DType } from "./dtype.ts";
import { checkStatus, type NativeSymbols } from "./native-library.ts";
import { formatCode as code, type QuantFormat, type WeightFormat } from "./weight-format.ts";

/** RoPE frequency scaling: Llama 3.1's, or linear (every frequency divided by the factor). */
export type RopeFrequencyScaling =
  | { type: "llama3"; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPosition: number }
  | { type: "linear"; factor: number };

export class NativeOps {
  protected constructor(
    protected readonly s: NativeSymbols,
    protected readonly context: Pointer,
  ) {}

  protected check(op: string, status: number): void {
    checkStatus(this.s, op, status);
  }

  /** Between dtypes, or quantizing into / dequantizing from a quantized format (whole blocks). */
  convert(dst: Address, dstDtype: WeightFormat, src: Address, srcDtype: WeightFormat, count: number): void {
    this.check("vt_convert", this.s.vt_convert(this.context, dst, code(dstDtype), src, code(srcDtype), count));
  }

  fillUniform(dst: Address, dtype: DType, count: number, seed: number, scale: number): void {
    this.check("vt_fill_uniform", this.s.vt_fill_uniform(this.context, dst, code(dtype), count, seed >>> 0, scale));
  }

  // ---- model layers ---------------------------------------------------------------------------

  embedding(a: {
    tokenIds: Address;
    numTokens: number;
    table: Address;
    vocabSize: number;
    hiddenSize: number;
    /** Multiplies every row (Gemma's sqrt(hidden_size)); 1 when absent. */
    scale?: number;
    out: Address;
    weightDtype: DType;
    actDtype: DType;
  }): void {
    this.check(
      "vt_embedding",
      this.s.vt_embedding(
        this.context,
        a.tokenIds,
        a.numTokens,
        a.table,
        a.vocabSize,
        a.hiddenSize,
        a.scale ?? 1,
        a.out,
        code(a.weightDtype),
        code(a.actDtype),
      ),
    );
  }

  rmsNorm(a: {
    input: Address;
    residual: Address | null;
    weight: Address;
    out: Address;
    numTokens: number;
    hiddenSize: number;
    eps: number;
    actDtype: DType;
    weightDtype: DType;
  }): void {
    this.check(
      "vt_rms_norm",
      this.s.vt_rms_norm(
        this.context,
        a.input,
        a.residual,
        a.weight,
        a.out,
        a.numTokens,
        a.hiddenSize,
        a.eps,
        code(a.actDtype),
        code(a.weightDtype),
      ),
    );
  }

  headRmsNorm(a: {
    x: Address;
    weight: Address;
    numTokens: number;
    numHeads: number;
    headDim: number;
    rowStride: number;
    eps: number;
    actDtype: DType;
    weightDtype: DType;
  }): void {
    this.check(
      "vt_head_rms_norm",
      this.s.vt_head_rms_norm(
        this.context,
        a.x,
        a.weight,
        a.numTokens,
        a.numHeads,
        a.headDim,
        a.rowStride,
        a.eps,
        code(a.actDtype),
        code(a.weightDtype),
      ),
    );
  }

  ropeCosSinCache(a: {
    cosSin: Address;
    maxPosition: number;
    rotaryDim: number;
    theta: number;
    scaling?: RopeFrequencyScaling | null;
  }): void {
    const s = a.scaling;
    const l = s?.type === "llama3" ? s : null;
    const scaling =
      s?.type === "llama3"
        ? vt_rope_scaling_type.VT_ROPE_SCALING_LLAMA3
        : s?.type === "linear"
          ? vt_rope_scaling_type.VT_ROPE_SCALING_LINEAR
          : vt_rope_scaling_type.VT_ROPE_SCALING_NONE;
    this.check(
      "vt_rope_cos_sin_cache",
      this.s.vt_rope_cos_sin_cache(
        this.context,
        a.cosSin,
        a.maxPosition,
        a.rotaryDim,
        a.theta,
        scaling,
        s?.factor ?? 1,
        l?.lowFreqFactor ?? 1,
        l?.highFreqFactor ?? 1,
        l?.originalMaxPosition ?? 0,
      ),
    );
  }

  rotaryEmbedding(a: {
    positions: Address;
    q: Address;
    k: Address;
    cosSin: Address;
    numTokens: number;
    numQHeads: number;
    numKvHeads: number;
    headDim: number;
    rotaryDim: number;
    rowStride: number;
    actDtype: DType;
  }): void {
    this.check(
      "vt_rotary_embedding",
      this.s.vt_rotary_embedding(
        this.context,
        a.positions,
        a.q,
        a.k,
        a.cosSin,
        a.numTokens,
        a.numQHeads,
        a.numKvHeads,
        a.headDim,
        a.rotaryDim,
        a.rowStride,
        code(a.actDtype),
      ),
    );
  }

  siluAndMul(a: { x: Address; out: Address; numTokens: number; d: number; actDtype: DType }): void {
    this.check("vt_silu_and_mul", this.s.vt_silu_and_mul(this.context, a.x, a.out, a.numTokens, a.d, code(a.actDtype)));
  }

  geluTanhAndMul(a: { x: Address; out: Address; numTokens: number; d: number; actDtype: DType }): void {
    this.check(
      "vt_gelu_tanh_and_mul",
      this.s.vt_gelu_tanh_and_mul(this.context, a.x, a.out, a.numTokens, a.d, code(a.actDtype)),
    );
  }

  /** x = cap * tanh(x / cap) in place, over `count` values. */
  softCap(a: { x: Address; count: number; cap: number; actDtype: DType }): void {
    this.check("vt_soft_cap", this.s.vt_soft_cap(this.context, a.x, a.count, a.cap, code(a.actDtype)));
  }

  matmul(a: {
    x: Address;
    w: Address;
    bias?: Address | null;
    out: Address;
    m: number;
    n: number;
    k: number;
    actDtype: DType;
    /** A quantized format takes its bias in actDtype. */
    weightDtype: WeightFormat;
  }): void {
    this.check(
      "vt_matmul",
      this.s.vt_matmul(
        this.context,
        a.x,
        a.w,
        a.bias ?? null,
        a.out,
        a.m,
        a.n,
        a.k,
        code(a.actDtype),
        code(a.weightDtype),
      ),
    );
  }

  /** Rearranges quantized weights (n rows of k) in place into the layout vt_matmul reads; once, before use. */
  packWeights(a: { w: Address; n: number; k: number; format: QuantFormat }): void {
    this.check("vt_pack_weights", this.s.vt_pack_weights(this.context, a.w, a.n, a.k, code(a.format)));
  }

  gatherRows(a: { dst: Address; src: Address; indices: Address; numRows: number; rowBytes: number }): void {
    this.check("vt_gather_rows", this.s.vt_gather_rows(this.context, a.dst, a.src, a.indices, a.numRows, a.rowBytes));
  }

  // ---- mixture of experts ---------------------------------------------------------------------

  /** Each token's topK experts (int32 [numTokens, topK]) and their f32 weights, from router logits. */
  moeRoute(a: {
    logits: Address;
    numTokens: number;
    numExperts: number;
    topK: number;
    renormalize: boolean;
    actDtype: DType;
    expertIds: Address;
    weights: Address;
  }): void {
    this.check(
      "vt_moe_route",
      this.s.vt_moe_route(
        this.context,
        a.logits,
        a.numTokens,
        a.numExperts,
        a.topK,
        a.renormalize ? 1 : 0,
        code(a.actDtype),
        a.expertIds,
        a.weights,
      ),
    );
  }

  /** The slots sorted by expert (sortedSlots) and each expert's range of them (expertOffsets). */
  moeGroup(a: {
    expertIds: Address;
    numSlots: number;
    numExperts: number;
    sortedSlots: Address;
    expertOffsets: Address;
  }): void {
    this.check(
      "vt_moe_group",
      this.s.vt_moe_group(this.context, a.expertIds, a.numSlots, a.numExperts, a.sortedSlots, a.expertOffsets),
    );
  }

  /** out[s] = x[s / slotsPerXRow] · w[expert of s]^T for every grouped slot s; w stacked [numExperts, n, k]. */
  moeMatmul(a: {
    x: Address;
    slotsPerXRow: number;
    w: Address;
    sortedSlots: Address;
    expertOffsets: Address;
    out: Address;
    numSlots: number;
    numExperts: number;
    n: number;
    k: number;
    actDtype: DType;
    weightDtype: WeightFormat;
  }): void {
    this.check(
      "vt_moe_matmul",
      this.s.vt_moe_matmul(
        this.context,
        a.x,
        a.slotsPerXRow,
        a.w,
        a.sortedSlots,
        a.expertOffsets,
        a.out,
        a.numSlots,
        a.numExperts,
        a.n,
        a.k,
        code(a.actDtype),
        code(a.weightDtype),
      ),
    );
  }

  /**
   * out[t] = sum over j of weights[t, j] * x[t * topK + j], plus sigmoid(sharedGate[t]) * shared[t]
   * when a shared expert is given (Qwen2-MoE).
   */
  moeCombine(a: {
    x: Address;
    weights: Address;
    shared?: { x: Address; gate: Address } | null;
    out: Address;
    numTokens: number;
    topK: number;
    d: number;
    actDtype: DType;
  }): void {
    this.check(
      "vt_moe_combine",
      this.s.vt_moe_combine(
        this.context,
        a.x,
        a.weights,
        a.shared?.x ?? null,
        a.shared?.gate ?? null,
        a.out,
        a.numTokens,
        a.topK,
        a.d,
        code(a.actDtype),
      ),
    );
  }

  // ---- paged KV cache -------------------------------------------------------------------------

  writeKvCache(a: {
    k: Address;
    v: Address;
    kCache: Address;
    vCache: Address;
    slotMapping: Address;
    numTokens: number;
    numKvHeads: number;
    headDim: number;
    rowStride: number;
    blockSize: number;
    actDtype: DType;
    cacheDtype: DType;
  }): void {
    this.check(
      "vt_write_kv_cache",
      this.s.vt_write_kv_cache(
        this.context,
        a.k,
        a.v,
        a.kCache,
        a.vCache,
        a.slotMapping,
        a.numTokens,
        a.numKvHeads,
        a.headDim,
        a.rowStride,
        a.blockSize,
        code(a.actDtype),
        code(a.cacheDtype),
      ),
    );
  }

  pagedAttention(a: {
    out: Address;
    q: Address;
    kCache: Address;
    vCache: Address;
    blockTables: Address;
    seqLens: Address;
    queryStartLoc: Address;
    numSeqs: number;
    numTokens: number;
    maxQueryLen: number;
    maxSeqLen: number;
    maxBlocksPerSeq: number;
    numQHeads: number;
    numKvHeads: number;
    headDim: number;
    qRowStride: number;
    blockSize: number;
    scale: number;
    slidingWindow: number;
    /** Scores become softCap * tanh(score / softCap) before the softmax; 0 (the default) is off. */
    softCap?: number;
    actDtype: DType;
    cacheDtype: DType;
  }): void {
    this.check(
      "vt_paged_attention",
      this.s.vt_paged_attention(
        this.context,
        a.out,
        a.q,
        a.kCache,
        a.vCache,
        a.blockTables,
        a.seqLens,
        a.queryStartLoc,
        a.numSeqs,
        a.numTokens,
        a.maxQueryLen,
        a.maxSeqLen,
        a.maxBlocksPerSeq,
        a.numQHeads,
        a.numKvHeads,
        a.headDim,
        a.qRowStride,
        a.blockSize,
        a.scale,
        a.slidingWindow,
        a.softCap ?? 0,
        code(a.actDtype),
        code(a.cacheDtype),
      ),
    );
  }

  copyBlocks(a: {
    cache: Address;
    numPlanes: number;
    planeStrideBytes: number;
    blockBytes: number;
    blockPairs: Address;
    numPairs: number;
  }): void {
    this.check(
      "vt_copy_blocks",
      this.s.vt_copy_blocks(
        this.context,
        a.cache,
        a.numPlanes,
        a.planeStrideBytes,
        a.blockBytes,
        a.blockPairs,
        a.numPairs,
      ),
    );
  }

  /** blockPairs is a host array of (src, dst) block pairs. */
  swapBlocks(a: {
    dst: Address;
    dstPlaneStrideBytes: number;
    src: Address;
    srcPlaneStrideBytes: number;
    numPlanes: number;
    blockBytes: number;
    blockPairs: Int32Array;
    kind: "deviceToHost" | "hostToDevice";
  }): void {
    const kind = a.kind === "deviceToHost" ? vt_copy_kind.VT_COPY_DEVICE_TO_HOST : vt_copy_kind.VT_COPY_HOST_TO_DEVICE;
    this.check(
      "vt_swap_blocks",
      this.s.vt_swap_blocks(
        this.context,
        a.dst,
        a.dstPlaneStrideBytes,
        a.src,
        a.srcPlaneStrideBytes,
        a.numPlanes,
        a.blockBytes,
        a.blockPairs,
        a.blockPairs.length / 2,
        kind,
      ),
    );
  }

  // ---- sampling helpers -----------------------------------------------------------------------

  argmax(a: { logits: Address; out: Address; numRows: number; vocabSize: number; actDtype: DType }): void {
    this.check("vt_argmax", this.s.vt_argmax(this.context, a.logits, a.out, a.numRows, a.vocabSize, code(a.actDtype)));
  }

  logSoftmax(a: {
    logits: Address;
    temperatures: Address | null;
    out: Address;
    numRows: number;
    vocabSize: number;
    actDtype: DType;
  }): void {
    this.check(
      "vt_log_softmax",
      this.s.vt_log_softmax(this.context, a.logits, a.temperatures, a.out, a.numRows, a.vocabSize, code(a.actDtype)),
    );
  }

  /** One token per row drawn on the device (see vt_sample); every array is a device address. */
  sample(a: {
    logits: Address;
    numRows: number;
    vocabSize: number;
    actDtype: DType;
    temperatures: Address;
    topK: Address;
    topP: Address;
    minP: Address;
    uniforms: Address;
    out: Address;
  }): void {
    this.check(
      "vt_sample",
      this.s.vt_sample(
        this.context,
        a.logits,
        a.numRows,
        a.vocabSize,
        code(a.actDtype),
        a.temperatures,
        a.topK,
        a.topP,
        a.minP,
        a.uniforms,
        a.out,
      ),
    );
  }

  /** Structured outputs: logits row rowIndices[i] keeps the tokens set in bitmask row i, the rest become -inf. */
  applyTokenBitmask(a: {
    logits: Address;
    numRows: number;
    vocabSize: number;
    actDtype: DType;
    bitmask: Address;
    wordsPerRow: number;
    rowIndices: Address;
    numMaskedRows: number;
  }): void {
    this.check(
      "vt_apply_token_bitmask",
      this.s.vt_apply_token_bitmask(
        this.context,
        a.logits,
        a.numRows,
        a.vocabSize,
        code(a.actDtype),
        a.bitmask,
        a.wordsPerRow,
        a.rowIndices,
        a.numMaskedRows,
      ),
    );
  }
}
