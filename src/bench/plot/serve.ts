// `bench serve --plot`: the latency distributions (CDFs of TTFT, TPOT, ITL, E2E) and the output
// throughput over the run; plus the terminal's one-line view of the latter.
import { sparkline } from "../report.ts";
import type { RequestOutcome } from "../serve/client.ts";
import { Axes, COLORS, legend, type Series, svgDocument } from "./svg.ts";

export interface ServeSamples {
  ttft: readonly number[];
  tpot: readonly number[];
  itl: readonly number[];
  e2el: readonly number[];
}

const TITLES = {
  ttft: "Time to first token",
  tpot: "Time per output token (excl. 1st)",
  itl: "Inter-token latency",
  e2el: "End-to-end latency",
} as const;
const CDF_COLORS = { ttft: COLORS.blue, tpot: COLORS.orange, itl: COLORS.green, e2el: COLORS.purple } as const;

/** Points of the empirical CDF: the fraction of samples at or below each value. */
function cdf(values: readonly number[]): [number, number][] {
  const sorted = [...values].sort((a, b) => a - b);
  return [[0, 0], ...sorted.map((value, i) => [value, (i + 1) / sorted.length] as [number, number])];
}

/** Output tokens per second in `bins` equal slices of the run, from each request's chunk times. */
export function outputThroughput(
  outcomes: readonly RequestOutcome[],
  startMs: number,
  durationS: number,
  bins: number,
): { binSeconds: number; tokensPerSecond: number[] } {
  const binSeconds = Math.max(durationS, 1e-3) / bins;
  const tokens = new Array<number>(bins).fill(0);
  for (const outcome of outcomes) {
    if (!outcome.success) continue;
    // Each text chunk is credited an equal share of the request's output tokens.
    const perChunk = outcome.outputLen / (outcome.itlMs.length + 1);
    let at = outcome.startedMs - startMs + outcome.ttftMs;
    for (let chunk = 0; chunk <= outcome.itlMs.length; chunk++) {
      if (chunk > 0) at += outcome.itlMs[chunk - 1]!;
      tokens[Math.min(bins - 1, Math.max(0, Math.floor(at / 1000 / binSeconds)))]! += perChunk;
    }
  }
  return { binSeconds, tokensPerSecond: tokens.map((count) => count / binSeconds) };
}

export function serveChart(
  samples: ServeSamples,
  outcomes: readonly RequestOutcome[],
  startMs: number,
  durationS: number,
): string {
  const width = 1100;
  const panelWidth = 430;
  const panelHeight = 200;
  const parts = [
    `<text x="80" y="22" font-size="16" font-weight="bold">bench serve: latency distributions and output throughput</text>`,
  ];
  (["ttft", "tpot", "itl", "e2el"] as const).forEach((name, i) => {
    const frame = {
      x: 80 + (i % 2) * (panelWidth + 110),
      y: 60 + Math.floor(i / 2) * (panelHeight + 80),
      width: panelWidth,
      height: panelHeight,
    };
    const axes = new Axes(frame, Math.max(1e-3, ...samples[name]), 1);
    const series: Series = {
      label: `${name.toUpperCase()} CDF (${samples[name].length} samples)`,
      color: CDF_COLORS[name],
      points: cdf(samples[name]),
    };
    parts.push(axes.draw(`${TITLES[name]} (${name.toUpperCase()})`, "milliseconds", "fraction of samples"));
    parts.push(axes.lines([series], true));
    parts.push(legend(frame.x + 10, frame.y + 18, [{ label: series.label, color: series.color, line: true }]));
  });
  const bins = 40;
  const { binSeconds, tokensPerSecond } = outputThroughput(outcomes, startMs, durationS, bins);
  const frame = { x: 80, y: 60 + 2 * (panelHeight + 80), width: width - 110, height: panelHeight };
  const axes = new Axes(frame, durationS, Math.max(1, ...tokensPerSecond));
  parts.push(
    axes.draw(
      `Output throughput over time (${bins} slices of ${(binSeconds * 1000).toFixed(1)} ms)`,
      "seconds since the first request",
      "output tokens/s",
    ),
  );
  parts.push(`<g class="throughput">`);
  tokensPerSecond.forEach((rate, i) => {
    const x = axes.x(i * binSeconds);
    parts.push(
      `<rect x="${x}" y="${axes.y(rate)}" width="${Math.max(0.5, axes.x((i + 1) * binSeconds) - x - 1)}" height="${Number((axes.y(0) - axes.y(rate)).toFixed(2))}" fill="${COLORS.blue}"><title>${rate.toFixed(1)} tok/s</title></rect>`,
    );
  });
  parts.push(`</g>`);
  parts.push(legend(frame.x + 10, frame.y + 18, [{ label: "output tokens per second", color: COLORS.blue }]));
  return svgDocument(
    width,
    frame.y + panelHeight + 50,
    "bench serve: latency distributions and output throughput",
    parts.join("\n"),
  );
}

/** "Output tok/s over time" for the terminal summary. */
export function throughputSparkline(
  outcomes: readonly RequestOutcome[],
  startMs: number,
  durationS: number,
  columns = 50,
): string {
  const { tokensPerSecond } = outputThroughput(outcomes, startMs, durationS, columns);
  return `|${sparkline(tokensPerSecond, columns)}| peak ${Math.max(0, ...tokensPerSecond).toFixed(1)} tok/s`;
}
