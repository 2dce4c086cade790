// The GPU check's end-to-end stage, run by the executable's own Bun: small random models of the
// supported architectures, written in the Hugging Face layout, continue one prompt greedily through
// `vllm-ts generate` on CUDA and on the CPU (the same text is expected from f32 weights; with bf16
// weights CUDA computes in bf16 and the CPU in f32, so agreement there is reported, not required),
// then `vllm-ts serve` on CUDA streams the same completion to the official openai client.
import { parseArgs } from "node:util";
import OpenAI from "openai";
import type { TorchDtypeName } from "../../src/backend/dtype.ts";
import type { Architecture } from "../../src/model/config.ts";
import { writeRandomModel } from "../../test/helpers/random-model.ts";
import { startServer } from "../../test/helpers/server-process.ts";
import type { E2eReport } from "./reports.ts";

const ARCHITECTURES: Architecture[] = [
  "LlamaForCausalLM",
  "MistralForCausalLM",
  "Qwen2ForCausalLM",
  "Qwen3ForCausalLM",
  "Gemma2ForCausalLM",
  "Gemma3ForCausalLM",
  "Phi3ForCausalLM",
];
const DTYPES: TorchDtypeName[] = ["float32", "bfloat16"];
const PROMPT = "The paged KV cache keeps every sequence in fixed-size blocks";
const MAX_TOKENS = 24;
/** Small, but with the head dim (64) and widths the tensor-core kernels take. */
const SHAPE = {
  hiddenSize: 256,
  intermediateSize: 512,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  maxPositionEmbeddings: 512,
};

const { values: args } = parseArgs({
  options: {
    executable: { type: "string" },
    "output-json": { type: "string" },
    /** Run the CUDA side on this library file (the emulated one in a dry run) instead of --device cuda's. */
    "cuda-library": { type: "string" },
  },
});
const executable = args.executable!;
const cudaLibrary = args["cuda-library"];
// The children are vllm-ts, not Bun: BUN_BE_BUN (which runs this script) must not reach them.
const baseEnv = { ...process.env, BUN_BE_BUN: undefined, VLLM_TS_LIBRARY: undefined };
const cudaEnv = { ...baseEnv, VLLM_TS_LIBRARY: cudaLibrary };

function generate(model: string, device: "cpu" | "cuda"): { text: string; ok: boolean; error: string } {
  const result = Bun.spawnSync(
    [
      executable,
      "generate",
      model,
      "--device",
      device,
      "--prompt",
      PROMPT,
      "--max-tokens",
      String(MAX_TOKENS),
      "--kv-cache-memory",
      "64MiB",
      "--max-model-len",
      "512",
    ],
    { env: device === "cuda" ? cudaEnv : baseEnv, stdout: "pipe", stderr: "pipe" },
  );
  const stderr = result.stderr.toString();
  return {
    text: result.stdout.toString(),
    ok: result.exitCode === 0,
    error: result.exitCode === 0 ? "" : stderr.trim().split("\n").slice(-3).join(" "),
  };
}

async function streamFromServer(model: string): Promise<string> {
  const server = await startServer(
    model,
    ["--served-model-name", "e2e", "--kv-cache-memory", "64MiB", "--max-model-len", "512"],
    cudaEnv,
    { executable, device: "cuda" },
  );
  try {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused" });
    const stream = await client.completions.create({
      model: "e2e",
      prompt: PROMPT,
      max_tokens: MAX_TOKENS,
      temperature: 0,
      stream: true,
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? "";
    return text;
  } finally {
    await server.stop();
  }
}

const cases = [];
let seed = 11;
for (const architecture of ARCHITECTURES) {
  for (const dtype of DTYPES) {
    const model = await writeRandomModel({ architecture, dtype, seed: seed++, ...SHAPE });
    const cpu = generate(model.dir, "cpu");
    const cuda = generate(model.dir, "cuda");
    const equal = cpu.ok && cuda.ok && cpu.text === cuda.text && cpu.text.length > 0;
    console.log(
      `${architecture} ${dtype}: ${equal ? "equal" : "DIFFERENT"}${cpu.error ? `; cpu: ${cpu.error}` : ""}${cuda.error ? `; cuda: ${cuda.error}` : ""}`,
    );
    if (!equal) console.log(`  cpu:  ${JSON.stringify(cpu.text)}\n  cuda: ${JSON.stringify(cuda.text)}`);
    cases.push({ architecture, dtype, model: model.dir, equal, cpu, cuda });
  }
}

// The server streams the completion `generate` printed on CUDA for the first f32 model.
const reference = cases.find((c) => c.dtype === "float32" && c.cuda.ok);
let serve: { matches: boolean; text?: string; expected?: string; error?: string };
try {
  if (!reference) throw new Error("no f32 model generated on CUDA");
  const text = await streamFromServer(reference.model);
  // `generate` ends its output with a newline after the streamed text.
  const expected = reference.cuda.text.replace(/\n$/, "");
  serve = { matches: text === expected, text, expected };
} catch (error) {
  serve = { matches: false, error: (error as Error).message.split("\n")[0] };
}
console.log(
  `serve on cuda, streamed through the openai client: ${serve.matches ? "same text" : `DIFFERENT ${JSON.stringify(serve)}`}`,
);

const f32 = cases.filter((c) => c.dtype === "float32");
const bf16 = cases.filter((c) => c.dtype === "bfloat16");
const generateSummary = {
  f32Matches: f32.filter((c) => c.equal).length,
  f32Total: f32.length,
  bf16Matches: bf16.filter((c) => c.equal).length,
  bf16Total: bf16.length,
  // bf16 runs must at least finish on both devices.
  bf16Ran: bf16.every((c) => c.cpu.ok && c.cuda.ok),
};
const passed = generateSummary.f32Matches === generateSummary.f32Total && generateSummary.bf16Ran && serve.matches;
const report: E2eReport = { passed, generate: generateSummary, serve, cases: cases.map(({ model: _, ...c }) => c) };
if (args["output-json"]) {
  await Bun.write(args["output-json"], `${JSON.stringify(report, null, 2)}\n`);
}
process.exit(passed ? 0 : 1);
