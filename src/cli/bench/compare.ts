// `vllm-ts bench compare`: continuous batching (paged KV) against the static baselines (max-length
// KV; Hugging Face generate()'s static batching, and static-drop) on the same requests and memory,
// the scheduler's time per step alone, and prefix caching on and off; src/bench/engine/compare.ts
// runs the experiment.
import { defineCommand } from "citty";
import { runCompare } from "../../bench/engine/compare.ts";
import { UsageError } from "../../usage-error.ts";
import { coreOptions, engineArgs, integer, modelArgs } from "../engine-args.ts";
import { lengthRange, plotArgs, plotPath, rangeRatio, reportArgs } from "./bench-args.ts";
import { runBench } from "./run-bench.ts";

/** Without --max-model-len the static baselines would reserve the model's whole context per sequence. */
const DEFAULT_MAX_MODEL_LEN = 512;

export default defineCommand({
  meta: {
    name: "compare",
    description:
      "Continuous batching (paged KV) vs static batching (max-length KV) as Hugging Face generate() does it and as static-drop, on the same requests and memory; prefix caching on vs off",
  },
  args: {
    ...modelArgs,
    ...engineArgs,
    "max-num-seqs": {
      type: "string",
      default: "64",
      description: "Most sequences of a static batch (also sizes the default KV budget)",
    },
    "continuous-max-num-seqs": {
      type: "string",
      default: "256",
      description: "Most running sequences of continuous batching",
    },
    "num-prompts": { type: "string", default: "200", description: "Requests of each workload" },
    "input-len": { type: "string", default: "32:256", description: "Prompt tokens: N, or LOW:HIGH" },
    "output-len": {
      type: "string",
      default: "16:256",
      description: "Tokens to generate (ignoring EOS): N, or LOW:HIGH",
    },
    "range-ratio": {
      type: "string",
      default: "0",
      description: "Lengths given as N are drawn from [N*(1-r), N*(1+r)]",
    },
    "prefix-len": {
      type: "string",
      default: "192",
      description: "Shared-prefix workload: tokens every prompt starts with",
    },
    "suffix-len": {
      type: "string",
      default: "32",
      description: "Shared-prefix workload: most tokens of each prompt after the prefix",
    },
    "scheduler-requests": {
      type: "string",
      default: "256",
      description: "Running requests when timing the scheduler alone",
    },
    rounds: {
      type: "string",
      default: "1",
      description:
        "Runs of each batching policy, interleaved (the order rotating each round); each policy's figures are its fastest run's, so that a burst of other load on the machine does not decide the comparison",
    },
    ...reportArgs,
    ...plotArgs,
  },
  run: ({ args }) =>
    runBench(() => {
      const options = coreOptions({ ...args, "max-model-len": args["max-model-len"] ?? String(DEFAULT_MAX_MODEL_LEN) });
      const maxNumSeqs = options.maxNumSeqs!;
      const maxModelLen = options.maxModelLen!;
      const continuousMaxNumSeqs = integer("continuous-max-num-seqs", args["continuous-max-num-seqs"], 1);
      const numPrompts = integer("num-prompts", args["num-prompts"], 1);
      const ratio = rangeRatio(args["range-ratio"]);
      const input = lengthRange("input-len", args["input-len"], ratio);
      const output = lengthRange("output-len", args["output-len"], ratio);
      const prefixLen = integer("prefix-len", args["prefix-len"], 1);
      const suffixLen = integer("suffix-len", args["suffix-len"], 1);
      const schedulerRequests = integer("scheduler-requests", args["scheduler-requests"], 1);
      const rounds = integer("rounds", args.rounds, 1);
      const plot = plotPath(args.plot);
      if (input.high + output.high > maxModelLen)
        throw new UsageError(
          `--input-len + --output-len reach ${input.high + output.high} tokens, more than --max-model-len ${maxModelLen}`,
        );
      if (prefixLen + suffixLen + output.high > maxModelLen)
        throw new UsageError(
          `--prefix-len + --suffix-len + --output-len reach ${prefixLen + suffixLen + output.high} tokens, more than --max-model-len ${maxModelLen}`,
        );
      return runCompare({
        core: { ...options, maxNumSeqs, maxModelLen },
        continuousMaxNumSeqs,
        numPrompts,
        input,
        output,
        prefixLen,
        suffixLen,
        schedulerRequests,
        rounds,
        plot,
        outputJson: args["output-json"],
      });
    }),
});
