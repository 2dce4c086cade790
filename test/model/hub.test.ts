// Hub repo ids as model references: downloaded into the standard Hugging Face cache from a fake
// Hub on 127.0.0.1, loaded from that cache without a network, and every failure a clear error.

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { cpSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ModelLoadError } from "../../src/model/errors.ts";
import { parseHubReference } from "../../src/model/hub/hub-model.ts";
import { resolveModel } from "../../src/model/load-model.ts";
import { loadModelTokenizer } from "../../src/model/load-tokenizer.ts";
import { type FakeHub, type FakeRepo, startFakeHub } from "../helpers/fake-hub.ts";
import { type RandomModel, writeRandomModel } from "../helpers/random-model.ts";

const COMMIT = "0123456789abcdef0123456789abcdef01234567";
const TOKEN = "hf_fake_token_for_tests";
const HF_VARIABLES = [
  "HF_HOME",
  "HF_HUB_CACHE",
  "HUGGINGFACE_HUB_CACHE",
  "XDG_CACHE_HOME",
  "HF_ENDPOINT",
  "HF_TOKEN",
  "HF_TOKEN_PATH",
  "HF_HUB_OFFLINE",
];

const tempDirs: string[] = [];
let model: RandomModel;
let sharded: RandomModel;
let hub: FakeHub | null = null;
let hfHome: string;
let savedEnv: Record<string, string | undefined>;

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

beforeAll(async () => {
  const size = { numLayers: 1, hiddenSize: 16, numHeads: 2 };
  model = await writeRandomModel(size);
  // The PyTorch copy many repos carry beside the safetensors.
  await Bun.write(join(model.dir, "pytorch_model.bin"), new Uint8Array(4096));
  sharded = await writeRandomModel({ ...size, sharded: true });
  // A second copy of the same weights, as Mistral repos ship beside their indexed shards.
  cpSync(join(sharded.dir, "model-00001-of-00002.safetensors"), join(sharded.dir, "consolidated.safetensors"));
  tempDirs.push(model.dir, sharded.dir);
});

afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  savedEnv = Object.fromEntries(HF_VARIABLES.map((name) => [name, process.env[name]]));
  for (const name of HF_VARIABLES) delete process.env[name];
  hfHome = tempDir("vllm-ts-hf-home-");
  process.env.HF_HOME = hfHome;
});

afterEach(async () => {
  for (const [name, value] of Object.entries(savedEnv)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  await hub?.stop();
  hub = null;
});

function serve(repos: Record<string, FakeRepo>): FakeHub {
  hub = startFakeHub(repos);
  process.env.HF_ENDPOINT = hub.url;
  return hub;
}

const repoDir = (repo: string) => join(hfHome, "hub", `models--${repo.replace("/", "--")}`);

async function loadError(model: string): Promise<ModelLoadError> {
  const error = await resolveModel(model).then(
    () => null,
    (error: unknown) => error,
  );
  expect(error).toBeInstanceOf(ModelLoadError);
  return error as ModelLoadError;
}

describe("Hub repo ids", () => {
  test("a repo id downloads into the standard Hugging Face cache layout", async () => {
    serve({ "test-org/tiny": { dir: model.dir, commit: COMMIT } });
    const source = await resolveModel("test-org/tiny");

    const snapshot = join(repoDir("test-org/tiny"), "snapshots", COMMIT);
    expect(source.name).toBe("test-org/tiny");
    expect(source.dir).toBe(snapshot);
    expect(source.config).toEqual(model.config);
    expect(readFileSync(join(repoDir("test-org/tiny"), "refs", "main"), "utf8")).toBe(COMMIT);
    const files = readdirSync(snapshot).sort();
    expect(files).toEqual([
      "config.json",
      "generation_config.json",
      "model.safetensors",
      "tokenizer.json",
      "tokenizer_config.json",
    ]);
    for (const file of files) {
      expect(lstatSync(join(snapshot, file)).isSymbolicLink()).toBe(true);
      expect(readlinkSync(join(snapshot, file))).toStartWith("../../blobs/");
      expect(readFileSync(join(snapshot, file))).toEqual(readFileSync(join(model.dir, file)));
    }
    expect(readdirSync(join(repoDir("test-org/tiny"), "blobs"))).toHaveLength(files.length);
  });

  test(".bin weights are neither requested nor stored", async () => {
    const { requests } = serve({ "test-org/tiny": { dir: model.dir, commit: COMMIT } });
    await resolveModel("test-org/tiny");
    expect(requests.length).toBeGreaterThan(0);
    expect(requests.filter((request) => request.path.endsWith(".bin"))).toEqual([]);
    expect(existsSync(join(repoDir("test-org/tiny"), "snapshots", COMMIT, "pytorch_model.bin"))).toBe(false);
  });

  test("with a safetensors index, only the shards it names are downloaded", async () => {
    serve({ "test-org/sharded": { dir: sharded.dir, commit: COMMIT } });
    const source = await resolveModel("test-org/sharded");
    const files = readdirSync(source.dir!);
    expect(files).toContain("model.safetensors.index.json");
    expect(files).toContain("model-00001-of-00002.safetensors");
    expect(files).toContain("model-00002-of-00002.safetensors");
    expect(files).not.toContain("consolidated.safetensors");
  });

  test("a cached model loads, tokenizer included, with the Hub stopped", async () => {
    const { requests, stop } = serve({ "test-org/tiny": { dir: model.dir, commit: COMMIT } });
    const downloaded = await resolveModel("test-org/tiny");
    const requestCount = requests.length;
    await stop();

    const cached = await resolveModel("test-org/tiny");
    expect(cached).toEqual(downloaded);
    expect(requests).toHaveLength(requestCount);
    const tokenizer = await loadModelTokenizer(cached);
    expect(tokenizer.encode("hello").length).toBeGreaterThan(0);
  });

  test("HF_HUB_OFFLINE=1 loads a cached model and refuses to download a missing one", async () => {
    serve({ "test-org/tiny": { dir: model.dir, commit: COMMIT } });
    await resolveModel("test-org/tiny");
    process.env.HF_HUB_OFFLINE = "1";
    const requestCount = hub!.requests.length;

    expect((await resolveModel("test-org/tiny")).config).toEqual(model.config);
    const error = await loadError("test-org/other");
    expect(error.message).toContain("HF_HUB_OFFLINE");
    expect(hub!.requests).toHaveLength(requestCount);
  });

  test("HF_TOKEN goes to the Hub as a Bearer token", async () => {
    const { requests } = serve({ "test-org/gated": { dir: model.dir, commit: COMMIT, token: TOKEN } });
    process.env.HF_TOKEN = TOKEN;
    expect((await resolveModel("test-org/gated")).config).toEqual(model.config);
    expect(requests.length).toBeGreaterThan(0);
    expect(requests.every((request) => request.authorization === `Bearer ${TOKEN}`)).toBe(true);
  });

  test("a gated repo without HF_TOKEN is a 401 error that says to set HF_TOKEN", async () => {
    serve({ "test-org/gated": { dir: model.dir, commit: COMMIT, token: TOKEN } });
    const error = await loadError("test-org/gated");
    expect(error.file).toBe("test-org/gated");
    expect(error.message).toContain("401");
    expect(error.message).toContain("set HF_TOKEN");
  });

  test("an unknown repo is a not-found error naming the repo", async () => {
    serve({});
    const error = await loadError("test-org/missing");
    expect(error.message).toStartWith("test-org/missing: ");
    expect(error.message).toContain("not found");
  });

  test("an unreachable HF_ENDPOINT with nothing cached says both", async () => {
    const { url, stop } = serve({});
    await stop();
    const error = await loadError("test-org/tiny");
    expect(error.message).toContain(`could not reach HF_ENDPOINT ${url}`);
    expect(error.message).toContain("not cached");
  });

  test("a revision after @ downloads that commit, without a ref", async () => {
    serve({ "test-org/tiny": { dir: model.dir, commit: COMMIT } });
    const source = await resolveModel(`test-org/tiny@${COMMIT}`);
    expect(source.dir).toBe(join(repoDir("test-org/tiny"), "snapshots", COMMIT));
    expect(existsSync(join(repoDir("test-org/tiny"), "refs"))).toBe(false);
  });

  test("an existing local directory wins over a repo id of the same name", async () => {
    const { requests } = serve({ "test-org/tiny": { dir: sharded.dir, commit: COMMIT } });
    const workDir = tempDir("vllm-ts-cwd-");
    cpSync(model.dir, join(workDir, "test-org", "tiny"), { recursive: true });
    const previousDir = process.cwd();
    process.chdir(workDir);
    try {
      const source = await resolveModel("test-org/tiny");
      expect(source.dir).toBe(join(workDir, "test-org", "tiny"));
      expect(requests).toEqual([]);
    } finally {
      process.chdir(previousDir);
    }
  });

  test("only names shaped like Org/Name[@revision] count as repo ids", () => {
    expect(parseHubReference("Qwen/Qwen3-0.6B")).toEqual({ repo: "Qwen/Qwen3-0.6B", revision: "main" });
    expect(parseHubReference("meta-llama/Llama-3.2-1B@refs/pr/1")).toEqual({
      repo: "meta-llama/Llama-3.2-1B",
      revision: "refs/pr/1",
    });
    for (const path of ["./org/name", "../name", "/abs/org/name", "name", "a/b/c"])
      expect(parseHubReference(path)).toBeNull();
  });
});
