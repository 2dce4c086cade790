// GGUF models by reference: a local .gguf path, a local folder or Hub repo with --gguf-file, and
// vLLM's "Org/Repo-GGUF:QUANT" picking the one file whose name carries the tag, downloaded alone
// from a fake Hub into the Hugging Face cache and found there again offline.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseHubReference } from "../../src/model/hub/hub-model.ts";
import { resolveModel } from "../../src/model/load-model.ts";
import { loadModelTokenizer } from "../../src/model/load-tokenizer.ts";
import { type FakeHub, startFakeHub } from "../helpers/fake-hub.ts";
import { writeGgufModel } from "../helpers/gguf-model-writer.ts";
import { type RandomModel, writeRandomModel } from "../helpers/random-model.ts";

const COMMIT = "89abcdef0123456789abcdef0123456789abcdef";
const HF_VARIABLES = ["HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_ENDPOINT", "HF_TOKEN", "HF_HUB_OFFLINE"];
const FILES = ["tiny-F16.gguf", "tiny-Q8_0.gguf", "tiny-Q4_K_M.gguf", "tiny-Q4_K_S.gguf"];

let model: RandomModel;
let repoDir: string;
let hub: FakeHub;
let hfHome: string;
let savedEnv: Record<string, string | undefined>;

beforeAll(async () => {
  model = await writeRandomModel({ architecture: "Qwen3ForCausalLM", numLayers: 1, hiddenSize: 32, numHeads: 2 });
  repoDir = mkdtempSync(join(tmpdir(), "vllm-ts-gguf-repo-"));
  const file = await writeGgufModel(model, { type: "F16", file: join(repoDir, FILES[0]!) });
  // The other quantizations' files only need names here: they are never downloaded.
  for (const name of FILES.slice(1)) copyFileSync(file, join(repoDir, name));
  hub = startFakeHub({ "test-org/tiny-GGUF": { dir: repoDir, commit: COMMIT } });
});

afterAll(async () => {
  await hub.stop();
  for (const dir of [model.dir, repoDir]) rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  savedEnv = Object.fromEntries(HF_VARIABLES.map((name) => [name, process.env[name]]));
  for (const name of HF_VARIABLES) delete process.env[name];
  hfHome = mkdtempSync(join(tmpdir(), "vllm-ts-hf-home-"));
  process.env.HF_HOME = hfHome;
  process.env.HF_ENDPOINT = hub.url;
  hub.requests.length = 0;
});

afterEach(() => {
  for (const [name, value] of Object.entries(savedEnv)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  rmSync(hfHome, { recursive: true, force: true });
});

const snapshot = () => join(hfHome, "hub", "models--test-org--tiny-GGUF", "snapshots", COMMIT);

async function failure(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error("resolved without error");
}

describe("model references to GGUF files", () => {
  test("Org/Name:QUANT[@revision] parses into repo, revision and quantization tag", () => {
    expect(parseHubReference("Org/Repo-GGUF:Q4_K_M")).toEqual({
      repo: "Org/Repo-GGUF",
      revision: "main",
      quant: "Q4_K_M",
    });
    expect(parseHubReference("Org/Repo-GGUF:q8_0@v1.0")).toEqual({
      repo: "Org/Repo-GGUF",
      revision: "v1.0",
      quant: "q8_0",
    });
    expect(parseHubReference("Org/Repo")).toEqual({ repo: "Org/Repo", revision: "main" });
  });

  test("a local .gguf file is the model, named after the file", async () => {
    const source = await resolveModel(join(repoDir, "tiny-F16.gguf"));
    expect(source).toMatchObject({ name: "tiny-F16", dir: null, ggufFile: join(repoDir, "tiny-F16.gguf") });
    expect(source.config.architecture).toBe("Qwen3ForCausalLM");
    expect((await loadModelTokenizer(source)).encode("hello")).toEqual(
      (await loadModelTokenizer(await resolveModel(model.dir))).encode("hello"),
    );
  });

  test("a local folder with --gguf-file loads that file of it", async () => {
    const source = await resolveModel(repoDir, { ggufFile: "tiny-F16.gguf" });
    expect(source.ggufFile).toBe(join(repoDir, "tiny-F16.gguf"));
    expect(await failure(resolveModel(repoDir, { ggufFile: "nope.gguf" }))).toContain("nope.gguf: file not found");
  });

  test("Org/Name:QUANT downloads only the file with that tag (case-insensitive), then loads it from the cache offline", async () => {
    const source = await resolveModel("test-org/tiny-GGUF:f16");
    expect(source.name).toBe("test-org/tiny-GGUF:f16");
    expect(source.ggufFile).toBe(join(snapshot(), "tiny-F16.gguf"));
    expect(readdirSync(snapshot())).toEqual(["tiny-F16.gguf"]);
    const fetched = new Set(hub.requests.filter((r) => r.path.includes("/resolve/")).map((r) => r.path));
    expect([...fetched]).toEqual([`/test-org/tiny-GGUF/resolve/${COMMIT}/tiny-F16.gguf`]);
    process.env.HF_HUB_OFFLINE = "1";
    hub.requests.length = 0;
    expect((await resolveModel("test-org/tiny-GGUF:F16")).ggufFile).toBe(source.ggufFile);
    expect(hub.requests).toEqual([]);
  });

  test("a Hub repo with --gguf-file downloads that file", async () => {
    const source = await resolveModel("test-org/tiny-GGUF", { ggufFile: "tiny-Q8_0.gguf" });
    expect(source.ggufFile).toBe(join(snapshot(), "tiny-Q8_0.gguf"));
    expect(source.name).toBe("test-org/tiny-GGUF");
  });

  test("a tag matching several files or none, both selections at once, or none at all are clear errors", async () => {
    expect(await failure(resolveModel("test-org/tiny-GGUF:Q4_K"))).toContain(
      "2 GGUF files match the quantization tag Q4_K: tiny-Q4_K_M.gguf, tiny-Q4_K_S.gguf; name one with --gguf-file",
    );
    const noMatch = await failure(resolveModel("test-org/tiny-GGUF:IQ2_XS"));
    expect(noMatch).toContain("no file matches the quantization tag IQ2_XS (its .gguf files: ");
    for (const file of FILES) expect(noMatch).toContain(file);
    expect(await failure(resolveModel("test-org/tiny-GGUF:Q8_0", { ggufFile: "tiny-Q8_0.gguf" }))).toContain(
      "name the GGUF file either with --gguf-file or with :Q8_0, not both",
    );
    expect(await failure(resolveModel("test-org/tiny-GGUF"))).toContain(
      "it holds GGUF files: pick one with --gguf-file NAME or the Org/Name:QUANT form",
    );
  });
});
