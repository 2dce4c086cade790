// Every command refuses what it does not know, as vLLM's argparse does: unknown flags (with the
// nearest known one suggested), stray positionals, and vLLM flags this engine does not implement
// (with a sentence saying so); the value after an unknown flag is never taken for the model.
import { describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import type { ArgsDef } from "citty";
import { ArgumentError, checkArguments } from "../../src/cli/strict-args.ts";

const EXECUTABLE = resolve(import.meta.dir, "../../dist/vllm-ts");

const ARGS = {
  model: { type: "positional", required: false },
  "max-model-len": { type: "string" },
  "enable-prefix-caching": { type: "boolean", default: true },
  "model-name": { type: "string", alias: "m" },
} as const satisfies ArgsDef;

const refusal = (args: string[]) => {
  try {
    checkArguments(ARGS, args);
    return null;
  } catch (error) {
    expect(error).toBeInstanceOf(ArgumentError);
    return (error as Error).message;
  }
};

describe("checkArguments", () => {
  test("known flags, their values, negations, aliases and one positional pass", () => {
    for (const args of [
      ["/models/qwen", "--max-model-len", "1024"],
      ["--max-model-len=1024", "/models/qwen"],
      ["--no-enable-prefix-caching", "--enable-prefix-caching"],
      ["-m", "served", "--help"],
      ["--max-model-len", "-5"],
      ["/models/qwen", "--", "anything", "--else"],
    ])
      expect(refusal(args)).toBeNull();
  });

  test("an unknown flag is refused with the nearest known one, its value kept from the positionals", () => {
    expect(refusal(["--max-model-length=1024"])).toBe(
      "unrecognized arguments: --max-model-length (did you mean --max-model-len?)",
    );
    expect(refusal(["--bogus-flag", "value", "/models/qwen"])).toBe("unrecognized arguments: --bogus-flag");
  });

  test("positionals beyond those declared are refused", () => {
    expect(refusal(["/models/a", "/models/b"])).toBe("unrecognized arguments: /models/b");
  });

  test("vLLM flags not implemented are refused with a reason; values that ask for nothing pass", () => {
    expect(refusal(["--tensor-parallel-size", "2"])).toContain("tensor parallelism is not implemented");
    expect(refusal(["--tensor-parallel-size", "1"])).toBeNull();
    expect(refusal(["--speculative-config", "{}"])).toContain("speculative decoding is not implemented");
    expect(refusal(["--kv-cache-dtype", "auto"])).toBeNull();
    expect(refusal(["--kv-cache-dtype", "fp8"])).toContain("--kv-cache-dtype:");
    expect(refusal(["--enable-lora"])).toBe("--enable-lora: LoRA adapters are not implemented");
  });
});

describe("the executable", () => {
  const run = (args: string[]) => {
    const result = Bun.spawnSync([EXECUTABLE, ...args], { stdout: "pipe", stderr: "pipe" });
    return { code: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
  };

  test("serve stops with status 2 and argparse's kind of message, before loading anything", () => {
    const typo = run(["serve", "--max-model-length=1024"]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain(
      "vllm-ts serve: error: unrecognized arguments: --max-model-length (did you mean --max-model-len?)",
    );
    const parallel = run(["serve", "--tensor-parallel-size=2"]);
    expect(parallel.code).toBe(2);
    expect(parallel.stderr).toContain("tensor parallelism is not implemented");
  });

  test("--gguf-file is a flag of every command that loads a model, described in its help", () => {
    for (const command of [["serve"], ["generate"], ["chat"], ["bench", "throughput"]]) {
      const help = run([...command, "--help"]);
      expect({ command, code: help.code }).toEqual({ command, code: 0 });
      expect(help.stdout).toContain("--gguf-file");
      expect(help.stdout).toContain("The GGUF file to load from the model's Hub repo or local folder");
    }
  });

  test("subcommands are checked against their own flags", () => {
    const bench = run(["bench", "throughput", "--tool-call-parser", "hermes"]);
    expect(bench.code).toBe(2);
    expect(bench.stderr).toContain("vllm-ts bench throughput: error: unrecognized arguments: --tool-call-parser");
    expect(bench.stderr).not.toContain("hermes");
  });
});
