// Start-up as vLLM's: the port is bound before the model loads, so a port in use or a host this
// machine does not have fails at once, naming host and port, instead of after the load.
import { expect, test } from "bun:test";
import { resolve } from "node:path";
import { writeServerTestModel } from "../helpers/server-process.ts";

const EXECUTABLE = resolve(import.meta.dir, "../../dist/vllm-ts");

function serve(args: string[]) {
  const result = Bun.spawnSync([EXECUTABLE, "serve", ...args], { stdout: "pipe", stderr: "pipe" });
  return { code: result.exitCode, stderr: result.stderr.toString() };
}

test("a port in use fails before the model loads, naming host and port", async () => {
  const modelDir = await writeServerTestModel();
  const other = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("taken") });
  try {
    const { code, stderr } = serve([modelDir, "--host", "127.0.0.1", "--port", String(other.port)]);
    expect(code).toBe(1);
    expect(stderr).toContain(`cannot listen on 127.0.0.1:${other.port}: the port is in use`);
    expect(stderr).not.toContain("loaded on");
  } finally {
    other.stop(true);
  }
});

test("a host this machine does not have is named in the error", () => {
  const { code, stderr } = serve(["--host", "999.1.1.1", "--port", "0"]);
  expect(code).toBe(1);
  expect(stderr).toContain("cannot listen on 999.1.1.1:0: --host is not an address of this machine");
});
