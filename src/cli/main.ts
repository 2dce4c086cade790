#!/usr/bin/env bun
// The vllm-ts command line: one executable, subcommands loaded lazily.
import { defineCommand, runMain } from "citty";
import packageJson from "../../package.json";

const main = defineCommand({
  meta: {
    name: "vllm-ts",
    version: packageJson.version,
    description: "LLM inference and serving engine: PagedAttention, continuous batching, CUDA and CPU kernels",
  },
  subCommands: {
    bench: () => import("./bench.ts").then((m) => m.default),
    chat: () => import("./chat.ts").then((m) => m.default),
    generate: () => import("./generate.ts").then((m) => m.default),
    serve: () => import("./serve.ts").then((m) => m.default),
  },
});

runMain(main);
