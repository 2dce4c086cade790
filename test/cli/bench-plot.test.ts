// `dist/vllm-ts bench compare|serve --plot`: the SVG is a standalone document with the panels,
// one bar per request per policy (and a static batch's idle waits), and headless Chromium draws it
// as a picture that is not blank.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { inflateSync } from "node:zlib";
import { chromiumCommand } from "../helpers/chromium.ts";
import { type ServerProcess, startServer, writeServerTestModel } from "../helpers/server-process.ts";

const EXECUTABLE = resolve(import.meta.dir, "../../dist/vllm-ts");
const SLOW = 30_000;
const NUM_PROMPTS = 8;
const COMPARE = [
  "--device",
  "cpu",
  "--num-prompts",
  String(NUM_PROMPTS),
  "--input-len",
  "8:24",
  "--output-len",
  "4:12",
  "--max-model-len",
  "128",
  "--max-num-seqs",
  "4",
  "--prefix-len",
  "32",
  "--suffix-len",
  "8",
  "--scheduler-requests",
  "32",
];

let dir: string;
let server: ServerProcess | undefined;

beforeAll(() => {
  if (!existsSync(EXECUTABLE)) throw new Error(`${EXECUTABLE} is missing: run make first`);
  dir = mkdtempSync(join(tmpdir(), "vllm-ts-bench-plot-"));
});

afterAll(async () => {
  await server?.stop();
});

function bench(args: string[]): { stdout: string; stderr: string; exitCode: number } {
  const result = Bun.spawnSync([EXECUTABLE, "bench", ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  return { stdout: result.stdout.toString(), stderr: result.stderr.toString(), exitCode: result.exitCode };
}

/** The Gantt group of one policy: its `<g class="gantt" data-policy=...>` up to the next panel. */
function ganttOf(svg: string, policy: string): string {
  const start = svg.indexOf(`<g class="gantt" data-policy="${policy}">`);
  expect(start).toBeGreaterThanOrEqual(0);
  return svg.slice(start, svg.indexOf(`<g class="axes">`, start));
}

/** Fraction of pixels that are not near-white in an 8-bit RGB(A) non-interlaced PNG. */
function inkFraction(png: Buffer): { width: number; height: number; ink: number } {
  expect(png.subarray(1, 4).toString("latin1")).toBe("PNG");
  let offset = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const data: Buffer[] = [];
  while (offset < png.length) {
    const length = png.readUInt32BE(offset);
    const type = png.subarray(offset + 4, offset + 8).toString("latin1");
    const body = png.subarray(offset + 8, offset + 8 + length);
    if (type === "IHDR") {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      expect(body[8]).toBe(8);
      expect(body[12]).toBe(0);
      channels = ({ 2: 3, 6: 4 } as Record<number, number>)[body[9]!]!;
      expect(channels).toBeDefined();
    } else if (type === "IDAT") data.push(body);
    offset += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(data));
  const stride = width * channels;
  let previous = new Uint8Array(stride);
  let ink = 0;
  for (let row = 0; row < height; row++) {
    const filter = raw[row * (stride + 1)]!;
    const line = new Uint8Array(raw.subarray(row * (stride + 1) + 1, (row + 1) * (stride + 1)));
    for (let i = 0; i < stride; i++) {
      const left = i >= channels ? line[i - channels]! : 0;
      const up = previous[i]!;
      const upLeft = i >= channels ? previous[i - channels]! : 0;
      const p = left + up - upLeft;
      const [pa, pb, pc] = [Math.abs(p - left), Math.abs(p - up), Math.abs(p - upLeft)];
      const predictor = [0, left, up, (left + up) >> 1, pa <= pb && pa <= pc ? left : pb <= pc ? up : upLeft][filter]!;
      line[i] = (line[i]! + predictor) & 0xff;
    }
    for (let i = 0; i < stride; i += channels) if (line[i]! < 235 || line[i + 1]! < 235 || line[i + 2]! < 235) ink++;
    previous = line;
  }
  return { width, height, ink: ink / (width * height) };
}

describe("bench compare --plot", () => {
  test(
    "draws every policy's request timelines and the KV memory as a standalone SVG that Chromium renders",
    () => {
      const file = join(dir, "compare.svg");
      const { stdout, stderr, exitCode } = bench(["compare", ...COMPARE, "--plot", file]);
      expect(stderr).toBe("");
      expect(exitCode).toBe(0);
      for (const policy of ["continuous", "static", "static-drop"])
        expect(stdout).toMatch(new RegExp(`${policy}\\s+\\|[▁▂▃▄▅▆▇█ ]+\\|`));

      const svg = readFileSync(file, "utf8");
      expect(svg.startsWith("<svg ")).toBe(true);
      expect(svg.trimEnd().endsWith("</svg>")).toBe(true);
      expect(svg).toContain(`xmlns="http://www.w3.org/2000/svg"`);
      expect(svg).toMatch(/ viewBox="0 0 \d+ \d+"/);
      expect(svg).toMatch(/ width="\d+" height="\d+"/);
      for (const title of [
        "continuous batching: 8 requests",
        "static batching: 8 requests",
        "static-drop batching: 8 requests",
        "KV cache memory over time",
        "KV capacity: ",
        "seconds since start",
        "waiting (arrival to first scheduled)",
        "idle: done, returned when its batch ends",
        "continuous: slots holding tokens",
        "static-drop: allocated slots",
      ]) {
        expect(svg).toContain(title);
      }
      for (const policy of ["continuous", "static", "static-drop"])
        expect(ganttOf(svg, policy).match(/<rect class="run"/g)).toHaveLength(NUM_PROMPTS);
      // Outputs of 4 to 12 tokens: some request of a static batch is done before the batch is.
      expect(ganttOf(svg, "static")).toContain(`<rect class="idle"`);
      for (const policy of ["continuous", "static-drop"]) expect(ganttOf(svg, policy)).not.toContain(`class="idle"`);
      // Every opened element is closed (or self-closing): a rough well-formedness check.
      const opened = svg.match(/<[a-z][^>]*>/g)!.filter((tag) => !tag.endsWith("/>")).length;
      expect(svg.match(/<\/[a-z]+>/g)!.length).toBe(opened);

      const screenshot = join(dir, "compare.png");
      const command = chromiumCommand(mkdtempSync(join(dir, "chromium-")), `file://${file}`, [
        `--screenshot=${screenshot}`,
        "--window-size=1200,900",
      ]);
      const chromium = Bun.spawnSync(command, { stdout: "pipe", stderr: "pipe" });
      expect(existsSync(screenshot)).toBe(true);
      expect(chromium.exitCode).toBe(0);
      const { width, height, ink } = inkFraction(readFileSync(screenshot));
      expect([width, height]).toEqual([1200, 900]);
      expect(ink).toBeGreaterThan(0.01);
    },
    SLOW,
  );

  test("rejects a --plot file that is neither .svg nor .html before running anything", () => {
    const { stderr, exitCode } = bench(["compare", ...COMPARE, "--plot", join(dir, "chart.png")]);
    expect(exitCode).toBe(1);
    expect(stderr).toContain("must end in .svg or .html");
  });
});

describe("bench serve --plot", () => {
  test(
    "against a running server: latency CDFs and output throughput in an HTML page",
    async () => {
      server = await startServer(await writeServerTestModel(), ["--served-model-name", "tiny-qwen"]);
      const file = join(dir, "serve.html");
      const { stdout, stderr, exitCode } = bench([
        "serve",
        "--url",
        server.url,
        "--model",
        "tiny-qwen",
        "--num-prompts",
        "8",
        "--input-len",
        "16",
        "--output-len",
        "8",
        "--plot",
        file,
      ]);
      if (exitCode !== 0) throw new Error(`bench serve exited with ${exitCode}:\n${stderr}`);
      expect(stdout).toMatch(/Output tok\/s over time: \|[▁▂▃▄▅▆▇█]+\| peak \d/);
      const html = readFileSync(file, "utf8");
      expect(html.startsWith("<!DOCTYPE html>")).toBe(true);
      const svg = html.slice(html.indexOf("<svg "), html.indexOf("</svg>") + 6);
      expect(svg).toContain(`xmlns="http://www.w3.org/2000/svg"`);
      for (const title of [
        "Time to first token (TTFT)",
        "Time per output token (excl. 1st) (TPOT)",
        "Inter-token latency (ITL)",
        "End-to-end latency (E2EL)",
        "Output throughput over time",
        "TTFT CDF (8 samples)",
        "E2EL CDF (8 samples)",
      ]) {
        expect(svg).toContain(title);
      }
      expect(svg.match(/<polyline class="series"/g)).toHaveLength(4);
    },
    SLOW,
  );
});
