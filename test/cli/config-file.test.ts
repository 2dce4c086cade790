// vLLM's `serve --config FILE.yaml`: the file's flags apply as if given on the command line, the
// command line's own win, and a key no flag has is refused like an unknown flag.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type ServerProcess, startServer, writeServerTestModel } from "../helpers/server-process.ts";

let dir: string;
let modelDir: string;
let server: ServerProcess;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "vllm-ts-config-"));
  modelDir = await writeServerTestModel();
  const config = join(dir, "config.yaml");
  writeFileSync(
    config,
    [
      "max_model_len: 256",
      "served-model-name: from-config",
      'allowed-origins: ["https://page.example"]',
      "enable-prefix-caching: false",
    ].join("\n"),
  );
  // The command line's name wins over the file's.
  server = await startServer(modelDir, ["--config", config, "--served-model-name", "from-command-line"]);
});

afterAll(async () => {
  await server?.stop();
});

test("the file's flags apply and the command line's win", async () => {
  const models = (await (await fetch(`${server.url}/v1/models`)).json()) as {
    data: { id: string; max_model_len: number }[];
  };
  expect(models.data.map((model) => [model.id, model.max_model_len])).toEqual([["from-command-line", 256]]);
  const allowed = await fetch(`${server.url}/v1/models`, { headers: { Origin: "https://page.example" } });
  expect(allowed.headers.get("access-control-allow-origin")).toBe("https://page.example");
  const other = await fetch(`${server.url}/v1/models`, { headers: { Origin: "https://other.example" } });
  expect(other.headers.get("access-control-allow-origin")).toBeNull();
});

test("a key no flag has, or a file that is not a mapping, is refused with status 2", () => {
  const serve = (content: string) => {
    const config = join(dir, `bad-${Math.random()}.yaml`);
    writeFileSync(config, content);
    const result = Bun.spawnSync([resolve(import.meta.dir, "../../dist/vllm-ts"), "serve", "--config", config], {
      stdout: "pipe",
      stderr: "pipe",
    });
    return { code: result.exitCode, stderr: result.stderr.toString() };
  };
  const unknown = serve("max-model-length: 100\n");
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toContain("unrecognized arguments: --max-model-length (did you mean --max-model-len?)");
  const list = serve("- a\n- b\n");
  expect(list.code).toBe(2);
  expect(list.stderr).toContain("expected a mapping of flag names to values");
});
