// A randomized workload against the KV-cache manager, driven by a miniature vLLM-style scheduler:
// arrivals (some sharing prefixes, some n > 1), chunked prefill, decode, finishes, aborts, and
// preemption under a tiny block budget. After every step every invariant is checked, and every
// computed token must still sit in the slot its block table points to: a simulated KV cache in
// which each slot holds the token id written there.

import { describe, expect, test } from "bun:test";
import { KVCacheManager } from "../../src/engine/kv-cache-manager.ts";
import { makeRng } from "../helpers/fake-engine.ts";
import type { MutableKVRequest } from "../helpers/kv-request.ts";

interface SimRequest extends MutableKVRequest {
  maxOutputTokens: number;
  /** The id of the request this child shares its prompt with (parallel sampling). */
  parentId?: string;
}

interface SimConfig {
  seed: number;
  numBlocks: number;
  blockSize: number;
  enablePrefixCaching: boolean;
  steps: number;
  tokenBudget: number;
  maxNumSeqs: number;
}

const MAX_PROMPT_TOKENS = 300;
const MAX_OUTPUT_TOKENS = 48;
const VOCAB_SIZE = 5000;
const MAX_WAITING = 12;

class Simulation {
  readonly manager: KVCacheManager;
  readonly counts = {
    arrivals: 0,
    finished: 0,
    aborted: 0,
    preempted: 0,
    allocationFailures: 0,
    prefixHitTokens: 0,
    childHitTokens: 0,
  };
  private readonly random: () => number;
  private readonly waiting: SimRequest[] = [];
  private readonly running: SimRequest[] = [];
  private readonly sharedPrefixes: number[][];
  // The simulated KV cache: slot (blockId * blockSize + offset) holds the token id written there.
  private readonly slots: Int32Array;
  private nextRequestId = 0;

  constructor(private readonly config: SimConfig) {
    this.manager = new KVCacheManager(config);
    this.random = makeRng(config.seed);
    this.slots = new Int32Array(config.numBlocks * config.blockSize).fill(-1);
    this.sharedPrefixes = Array.from({ length: 4 }, () => this.tokens(this.int(8, 150)));
  }

  get live(): SimRequest[] {
    return [...this.running, ...this.waiting];
  }

  step(arrivalsOpen: boolean): void {
    // A bounded queue keeps the pool under pressure without an ever-growing backlog.
    if (arrivalsOpen && this.waiting.length < MAX_WAITING && this.random() < 0.35) this.arrive();
    const scheduled = this.schedule();
    this.check();
    this.sampleAndFinish(scheduled);
    if (arrivalsOpen && this.random() < 0.02) this.abortOne();
    this.check();
  }

  private int(min: number, max: number): number {
    return min + Math.floor(this.random() * (max - min + 1));
  }

  private tokens(length: number): number[] {
    return Array.from({ length }, () => this.int(0, VOCAB_SIZE - 1));
  }

  private arrive(): void {
    const numPromptTokens = this.int(1, MAX_PROMPT_TOKENS);
    let prompt: number[];
    if (this.random() < 0.5) {
      const prefix = this.sharedPrefixes[this.int(0, this.sharedPrefixes.length - 1)]!;
      prompt = [...prefix, ...this.tokens(numPromptTokens)].slice(0, numPromptTokens);
    } else {
      prompt = this.tokens(numPromptTokens);
    }
    const extraKey = this.random() < 0.1 ? "adapter-1" : undefined;
    const n = this.random() < 0.15 ? this.int(2, 4) : 1;
    const parentId = `req-${this.nextRequestId++}`;
    for (let child = 0; child < n; child++) {
      this.counts.arrivals++;
      this.waiting.push({
        requestId: n === 1 ? parentId : `${parentId}-${child}`,
        allTokenIds: [...prompt],
        numPromptTokens,
        numComputedTokens: 0,
        blockHashes: [],
        extraKey,
        maxOutputTokens: this.int(1, MAX_OUTPUT_TOKENS),
        parentId: n === 1 ? undefined : parentId,
      });
    }
  }

  /** One scheduling pass as in vLLM V1: running requests first, then waiting ones in order. */
  private schedule(): SimRequest[] {
    const scheduled: SimRequest[] = [];
    let budget = this.config.tokenBudget;
    let preempted = false;
    for (let i = 0; i < this.running.length && budget > 0; i++) {
      const request = this.running[i]!;
      const numNewTokens = Math.min(request.allTokenIds.length - request.numComputedTokens, budget);
      let allocated = false;
      for (;;) {
        if (this.manager.allocateSlots(request, numNewTokens) !== null) {
          allocated = true;
          break;
        }
        this.counts.allocationFailures++;
        // The newest running request makes room, down to the request itself.
        const victim = this.running.pop()!;
        this.preempt(victim);
        preempted = true;
        if (victim === request) break;
      }
      if (!allocated) break;
      this.compute(request, numNewTokens);
      budget -= numNewTokens;
      scheduled.push(request);
    }
    // As vLLM, no new request starts in a step that had to preempt.
    while (!preempted && budget > 0 && this.waiting.length > 0) {
      if (this.running.length >= this.config.maxNumSeqs) break;
      const request = this.waiting[0]!;
      const computed = this.manager.getComputedBlocks(request);
      const numPromptLeft = request.allTokenIds.length - computed.numComputedTokens;
      const numNewTokens = Math.min(numPromptLeft, budget);
      if (this.manager.allocateSlots(request, numNewTokens, computed.blocks) === null) {
        this.counts.allocationFailures++;
        break;
      }
      this.waiting.shift();
      this.running.push(request);
      this.counts.prefixHitTokens += computed.numComputedTokens;
      if (request.parentId !== undefined) this.counts.childHitTokens += computed.numComputedTokens;
      request.numComputedTokens = computed.numComputedTokens;
      this.compute(request, numNewTokens);
      budget -= numNewTokens;
      scheduled.push(request);
    }
    if (budget < 0) throw new Error(`token budget overrun by ${-budget}`);
    return scheduled;
  }

  /** Writes the K/V (here: the token ids) of the scheduled tokens into the request's slots. */
  private compute(request: SimRequest, numNewTokens: number): void {
    const { blockSize } = this.config;
    const blockIds = this.manager.blockIds(request.requestId);
    const end = request.numComputedTokens + numNewTokens;
    for (let position = request.numComputedTokens; position < end; position++) {
      const blockId = blockIds[Math.floor(position / blockSize)]!;
      const refCount = this.manager.blockPool.blocks[blockId]!.refCount;
      if (refCount !== 1) {
        const { requestId } = request;
        throw new Error(`${requestId} writes position ${position} into shared block ${blockId}`);
      }
      this.slots[blockId * blockSize + (position % blockSize)] = request.allTokenIds[position]!;
    }
    request.numComputedTokens = end;
  }

  private preempt(request: SimRequest): void {
    this.counts.preempted++;
    this.manager.free(request);
    request.numComputedTokens = 0;
    this.waiting.unshift(request);
  }

  /** Requests whose tokens are all computed get a sampled token; those at their limit finish. */
  private sampleAndFinish(scheduled: readonly SimRequest[]): void {
    for (const request of scheduled) {
      if (request.numComputedTokens < request.allTokenIds.length) continue;
      request.allTokenIds.push(this.int(0, VOCAB_SIZE - 1));
      if (request.allTokenIds.length - request.numPromptTokens >= request.maxOutputTokens) {
        this.counts.finished++;
        this.manager.free(request);
        this.running.splice(this.running.indexOf(request), 1);
      }
    }
  }

  private abortOne(): void {
    const live = this.live;
    if (live.length === 0) return;
    const request = live[this.int(0, live.length - 1)]!;
    this.counts.aborted++;
    this.manager.free(request);
    for (const queue of [this.running, this.waiting]) {
      const index = queue.indexOf(request);
      if (index >= 0) queue.splice(index, 1);
    }
  }

  private check(): void {
    const { blockSize, numBlocks } = this.config;
    this.manager.checkInvariants(this.live);
    for (const request of this.waiting) {
      if (request.numComputedTokens !== 0) {
        throw new Error(`waiting request ${request.requestId} has computed tokens`);
      }
    }
    for (const request of this.running) {
      const blockIds = this.manager.blockIds(request.requestId);
      for (let position = 0; position < request.numComputedTokens; position++) {
        const blockId = blockIds[Math.floor(position / blockSize)]!;
        const slot = this.slots[blockId * blockSize + (position % blockSize)]!;
        if (slot !== request.allTokenIds[position]) {
          throw new Error(
            `${request.requestId} position ${position}: block ${blockId} holds token ${slot}, ` +
              `expected ${request.allTokenIds[position]}`,
          );
        }
      }
    }
    // Plain comparisons rather than expect(): this runs twice per step, thousands of steps.
    const stats = this.manager.stats();
    const consistent =
      stats.usedBlocks + stats.freeBlocks === numBlocks &&
      stats.allocatedSlots === stats.usedBlocks * blockSize &&
      stats.tokensStored <= stats.allocatedSlots &&
      stats.wasteRatio >= 0 &&
      stats.wasteRatio < 1 &&
      stats.cachedFreeBlocks <= stats.freeBlocks;
    if (!consistent) throw new Error(`inconsistent stats: ${JSON.stringify(stats)}`);
  }
}

function runWorkload(config: SimConfig): Simulation {
  const simulation = new Simulation(config);
  for (let step = 0; step < config.steps; step++) simulation.step(true);
  let drainSteps = 0;
  while (simulation.live.length > 0) {
    simulation.step(false);
    if (++drainSteps > 50_000) throw new Error("the workload does not drain: no progress");
  }
  const { manager } = simulation;
  manager.checkInvariants([]);
  expect(manager.numFreeBlocks).toBe(config.numBlocks);
  expect(manager.blockPool.blocks.every((block) => block.refCount === 0)).toBe(true);
  expect(manager.stats()).toMatchObject({ usedBlocks: 0, tokensStored: 0, wasteRatio: 0 });
  expect(manager.resetPrefixCache()).toBe(true);
  manager.checkInvariants([]);
  return simulation;
}

// Each pool holds the longest request (300 + 48 tokens) a few times over, not much more, so that
// allocation fails and requests are preempted often.
const WORKLOADS: Array<[string, SimConfig]> = [
  [
    "prefix caching, block size 16",
    {
      seed: 1,
      numBlocks: 48,
      blockSize: 16,
      enablePrefixCaching: true,
      steps: 6000,
      tokenBudget: 128,
      maxNumSeqs: 16,
    },
  ],
  [
    "no prefix caching, block size 16",
    {
      seed: 2,
      numBlocks: 48,
      blockSize: 16,
      enablePrefixCaching: false,
      steps: 6000,
      tokenBudget: 128,
      maxNumSeqs: 16,
    },
  ],
  [
    "prefix caching, block size 4",
    {
      seed: 3,
      numBlocks: 160,
      blockSize: 4,
      enablePrefixCaching: true,
      steps: 4000,
      tokenBudget: 96,
      maxNumSeqs: 8,
    },
  ],
  [
    "prefix caching, block size 1",
    {
      seed: 4,
      numBlocks: 600,
      blockSize: 1,
      enablePrefixCaching: true,
      steps: 1500,
      tokenBudget: 64,
      maxNumSeqs: 8,
    },
  ],
  [
    "prefix caching, a pool that holds just the longest request",
    {
      seed: 5,
      numBlocks: 22,
      blockSize: 16,
      enablePrefixCaching: true,
      steps: 3000,
      tokenBudget: 256,
      maxNumSeqs: 16,
    },
  ],
];

describe("randomized KV-cache workload", () => {
  for (const [name, config] of WORKLOADS) {
    test(`${name}: invariants hold after every step and every block is free when idle`, () => {
      const { counts } = runWorkload(config);
      expect(counts.finished).toBeGreaterThan(50);
      expect(counts.aborted).toBeGreaterThan(5);
      expect(counts.preempted).toBeGreaterThan(5);
      expect(counts.allocationFailures).toBeGreaterThan(5);
      if (config.enablePrefixCaching) {
        expect(counts.prefixHitTokens).toBeGreaterThan(0);
        expect(counts.childHitTokens).toBeGreaterThan(0);
      } else {
        expect(counts.prefixHitTokens).toBe(0);
      }
    });
  }
});
