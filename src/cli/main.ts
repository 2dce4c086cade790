#!/usr/bin/env bun
// The vllm-ts command line: one executable, subcommands loaded lazily.
import { defineCommand, runMain } from "citty";
import packageJson from "../../package.json";
import { expandConfigFile } from "./config-file.ts";
import { ArgumentError, checkArguments, commandArgs, resolveCommand } from "./strict-args.ts";

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

// A command line its command cannot take stops here, before anything loads, as vLLM's does;
// --config FILE.yaml (on commands that take it) becomes the flags it holds.
const { command, path, args } = await resolveCommand(main, process.argv.slice(2));
let rawArgs: string[];
try {
  const argsDef = await commandArgs(command);
  rawArgs = [...path, ...(argsDef.config ? expandConfigFile(args) : args)];
  checkArguments(argsDef, rawArgs.slice(path.length));
} catch (error) {
  if (!(error instanceof ArgumentError)) throw error;
  console.error(`${["vllm-ts", ...path].join(" ")}: error: ${error.message}`);
  process.exit(2);
}
runMain(main, { rawArgs });
