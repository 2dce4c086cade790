// The GGUF files both engines read: random weights in the shapes of a benchmark model
// (bench/models/<name>/config.json), written in BF16 by the tests' GGUF writer, with a small
// byte-level BPE vocabulary padded to the model's size (llama.cpp's tools need a vocabulary that
// loads, not a real one), then quantized by llama.cpp's own llama-quantize. Written once under
// build/peer/ and reused.
import { existsSync } from "node:fs";
import { mkdir, rename } from "node:fs/promises";
import { join, resolve } from "node:path";
import { loadModelConfig } from "../../src/model/config.ts";
import { writeGgufModel } from "../../test/helpers/gguf-model-writer.ts";
import { str } from "../../test/helpers/gguf-writer.ts";
import { randomModelWeights } from "../../test/helpers/random-model.ts";
import { tinyTokenizerFiles } from "../../test/helpers/tiny-tokenizer.ts";
import { LLAMA_QUANTIZE } from "./llama-cpp-tools.ts";
import { runCommand } from "./run-command.ts";

/** The formats compared, with llama-quantize's name of each. */
export const FORMATS = { bf16: "BF16", q8_0: "Q8_0", q4_k_m: "Q4_K_M" } as const;
export type Format = keyof typeof FORMATS;

const REPOSITORY = resolve(import.meta.dir, "../..");
const FILES_DIR = join(REPOSITORY, "build/peer");
const WEIGHT_SEED = 0;

function ggufPath(model: string, format: Format): string {
  return join(FILES_DIR, model, `${model}-${format}.gguf`);
}

/** The model's BF16 file, written from its bench/models config when missing. */
async function writeBf16File(model: string): Promise<string> {
  const file = ggufPath(model, "bf16");
  console.log(`writing ${file}: random weights in the shapes of bench/models/${model}`);
  const dir = join(FILES_DIR, model);
  await mkdir(dir, { recursive: true });
  const config = await loadModelConfig(join(REPOSITORY, "bench/models", model));
  // The GGUF writer reads the tokenizer from the model's folder, as from a Hugging Face one.
  const tokenizer = tinyTokenizerFiles();
  await Bun.write(join(dir, "tokenizer.json"), JSON.stringify(tokenizer.tokenizerJson));
  await Bun.write(join(dir, "tokenizer_config.json"), JSON.stringify(tokenizer.tokenizerConfig));
  const weights = randomModelWeights(config, WEIGHT_SEED, "bf16");
  // Written aside and renamed, so an interrupted run never leaves a truncated file to be reused.
  await writeGgufModel(
    { dir, config, weights },
    { type: "BF16", file: `${file}.partial`, metadata: { "general.name": str(`${model} shape, random weights`) } },
  );
  await rename(`${file}.partial`, file);
  return file;
}

/** The model's file in `format`, made (BF16 written, then quantized) when missing. */
export async function ggufFile(model: string, format: Format, threads: number): Promise<string> {
  const file = ggufPath(model, format);
  if (existsSync(file)) return file;
  const bf16 = existsSync(ggufPath(model, "bf16")) ? ggufPath(model, "bf16") : await writeBf16File(model);
  if (format === "bf16") return bf16;
  console.log(`quantizing ${bf16} to ${FORMATS[format]} with llama-quantize`);
  await runCommand([LLAMA_QUANTIZE, bf16, `${file}.partial`, FORMATS[format], String(threads)]);
  await rename(`${file}.partial`, file);
  return file;
}
