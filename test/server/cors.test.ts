// CORS as vLLM configures it (--allowed-origins, --allowed-methods, --allowed-headers,
// --allow-credentials): preflights are answered, every answer to a request naming its Origin
// says whether that origin may read it, errors included, and origins outside the list are refused.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { type ServerProcess, startServer, writeServerTestModel } from "../helpers/server-process.ts";

let modelDir: string;
let open: ServerProcess;
let listed: ServerProcess;

beforeAll(async () => {
  modelDir = await writeServerTestModel();
  open = await startServer(modelDir);
  listed = await startServer(modelDir, [
    "--allowed-origins",
    '["https://good.example"]',
    "--allowed-methods",
    "GET,POST",
    "--allowed-headers",
    "content-type",
    "--allow-credentials",
  ]);
});

afterAll(async () => {
  await open?.stop();
  await listed?.stop();
});

const preflight = (server: ServerProcess, origin: string, headers = "content-type, authorization", method = "POST") =>
  fetch(`${server.url}/v1/chat/completions`, {
    method: "OPTIONS",
    headers: { Origin: origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers },
  });

const complete = (server: ServerProcess, origin: string) =>
  fetch(`${server.url}/v1/completions`, {
    method: "POST",
    headers: { Origin: origin, "Content-Type": "application/json" },
    body: JSON.stringify({ prompt: "hi", max_tokens: 2 }),
  });

describe("by default (any origin, as vLLM)", () => {
  test("a preflight is answered with the method and the headers asked for", async () => {
    const response = await preflight(open, "https://page.example");
    expect(response.status).toBe(200);
    expect(response.headers.get("access-control-allow-origin")).toBe("*");
    expect(response.headers.get("access-control-allow-methods")).toContain("POST");
    expect(response.headers.get("access-control-allow-headers")).toBe("content-type, authorization");
    expect(response.headers.get("access-control-max-age")).toBe("600");
  });

  test("answers, errors included, carry Access-Control-Allow-Origin", async () => {
    const served = await complete(open, "https://page.example");
    expect(served.status).toBe(200);
    expect(served.headers.get("access-control-allow-origin")).toBe("*");
    const missing = await fetch(`${open.url}/v1/nothing`, { headers: { Origin: "https://page.example" } });
    expect(missing.status).toBe(404);
    expect(missing.headers.get("access-control-allow-origin")).toBe("*");
  });

  test("a request without Origin gets no CORS headers", async () => {
    const response = await fetch(`${open.url}/v1/models`);
    expect(response.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("with a list of origins and credentials", () => {
  test("a listed origin is echoed, with Vary and credentials", async () => {
    const response = await preflight(listed, "https://good.example", "content-type");
    expect(response.status).toBe(200);
    expect(response.headers.get("access-control-allow-origin")).toBe("https://good.example");
    expect(response.headers.get("vary")).toBe("Origin");
    expect(response.headers.get("access-control-allow-credentials")).toBe("true");
    expect(response.headers.get("access-control-allow-methods")).toBe("GET, POST");
    const served = await complete(listed, "https://good.example");
    expect(served.headers.get("access-control-allow-origin")).toBe("https://good.example");
  });

  test("other origins, methods and headers are refused", async () => {
    const origin = await preflight(listed, "https://evil.example", "content-type");
    expect(origin.status).toBe(400);
    expect(origin.headers.get("access-control-allow-origin")).toBeNull();
    expect(((await origin.json()) as { error: { message: string } }).error.message).toContain(
      "origin https://evil.example is not allowed (--allowed-origins)",
    );
    expect((await preflight(listed, "https://good.example", "content-type", "DELETE")).status).toBe(400);
    expect((await preflight(listed, "https://good.example", "content-type, x-secret")).status).toBe(400);
    // The server still answers a simple request, but the browser may not show it to the page.
    const served = await complete(listed, "https://evil.example");
    expect(served.headers.get("access-control-allow-origin")).toBeNull();
  });
});

test("a list flag that is not a list of strings stops the server with a message", () => {
  const result = Bun.spawnSync(
    [resolve(import.meta.dir, "../../dist/vllm-ts"), "serve", modelDir, "--port", "0", "--allowed-origins", "[1]"],
    { stdout: "pipe", stderr: "pipe" },
  );
  expect(result.exitCode).not.toBe(0);
  expect(result.stderr.toString()).toContain("--allowed-origins: expected a JSON list of strings");
});
