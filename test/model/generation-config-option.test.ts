// --generation-config: which sampling defaults a served model uses.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveModel, withGenerationConfig } from "../../src/model/load-model.ts";
import { writeRandomModel } from "../helpers/random-model.ts";

describe("--generation-config", async () => {
  const model = await writeRandomModel({ generationConfig: { temperature: 0.3, top_p: 0.8 } });
  const source = await resolveModel(model.dir);

  test("auto keeps the model's generation_config.json", async () => {
    const chosen = await withGenerationConfig(source, "auto");
    expect(chosen.generationConfig.temperature).toBe(0.3);
    expect(chosen.generationConfig.topP).toBe(0.8);
  });

  test("vllm ignores it but keeps the EOS ids of config.json", async () => {
    const chosen = await withGenerationConfig(source, "vllm");
    expect(chosen.generationConfig.temperature).toBeUndefined();
    expect(chosen.generationConfig.eosTokenIds).toEqual(source.config.eosTokenIds);
  });

  test("a folder's generation_config.json replaces the model's", async () => {
    const folder = mkdtempSync(join(tmpdir(), "vllm-ts-genconfig-"));
    writeFileSync(join(folder, "generation_config.json"), JSON.stringify({ temperature: 0.9, top_k: 5 }));
    const chosen = await withGenerationConfig(source, folder);
    expect(chosen.generationConfig.temperature).toBe(0.9);
    expect(chosen.generationConfig.topK).toBe(5);
  });

  test("a folder without the file is an error naming the file", async () => {
    const folder = mkdtempSync(join(tmpdir(), "vllm-ts-genconfig-"));
    expect(withGenerationConfig(source, folder)).rejects.toThrow(join(folder, "generation_config.json"));
  });
});
