// `bench compare --plot`: a request timeline (Gantt chart) per batching policy on one time axis,
// and the KV memory each holds over time against the cache's capacity; plus the terminal's
// one-line view of the latter.
import type { RunTimeline } from "../engine/offline.ts";
import { sparkline } from "../report.ts";
import { Axes, COLORS, escapeXml, legend, type Series, svgDocument } from "./svg.ts";

export interface PolicyTimeline {
  name: string;
  timeline: RunTimeline;
}

const WIDTH = 1100;
const LEFT = 80;
const PLOT_WIDTH = WIDTH - LEFT - 30;
const WAIT_COLOR = COLORS.orange;
const RUN_COLOR = COLORS.blue;
/** A static batch's 空等待: the request is done, but returned only when its batch ends. */
const IDLE_COLOR = COLORS.red;
const FIRST_TOKEN_COLOR = COLORS.green;
/** One colour per policy in the KV panel: allocated slots solid, slots holding tokens dashed. */
const POLICY_COLORS = [COLORS.blue, COLORS.orange, COLORS.green, COLORS.purple];

const endOf = (timeline: RunTimeline) =>
  Math.max(0, ...timeline.kv.map((sample) => sample.seconds), ...timeline.requests.map((r) => r.finished ?? 0));

/**
 * One row per request: waiting from arrival to admission, running until its last token is
 * generated, then idle until it is returned (a static batch returns all its requests at its end).
 */
function gantt(axes: Axes, policy: PolicyTimeline, rowHeight: number): string {
  const { y } = axes.frame;
  const bar = Math.max(1, rowHeight * 0.8);
  const parts = [`<g class="gantt" data-policy="${escapeXml(policy.name)}">`];
  policy.timeline.requests.forEach((request, row) => {
    const top = Number((y + row * rowHeight + (rowHeight - bar) / 2).toFixed(2));
    const end = request.finished ?? request.admitted ?? request.arrival;
    const admitted = request.admitted ?? end;
    const generated = Math.min(request.generated ?? end, end);
    const label =
      `request ${row}: arrived ${request.arrival.toFixed(3)} s, admitted ${admitted.toFixed(3)} s, ` +
      `last token generated ${request.generated?.toFixed(3) ?? "-"} s, ` +
      `first token ${request.firstToken?.toFixed(3) ?? "-"} s, finished ${request.finished?.toFixed(3) ?? "-"} s`;
    parts.push(`<g><title>${label}</title>`);
    if (admitted > request.arrival)
      parts.push(
        `<rect class="wait" x="${axes.x(request.arrival)}" y="${top}" width="${Math.max(0.5, axes.x(admitted) - axes.x(request.arrival))}" height="${bar}" fill="${WAIT_COLOR}"/>`,
      );
    parts.push(
      `<rect class="run" x="${axes.x(admitted)}" y="${top}" width="${Math.max(0.5, axes.x(generated) - axes.x(admitted))}" height="${bar}" fill="${RUN_COLOR}"/>`,
    );
    if (end > generated)
      parts.push(
        `<rect class="idle" x="${axes.x(generated)}" y="${top}" width="${Math.max(0.5, axes.x(end) - axes.x(generated))}" height="${bar}" fill="${IDLE_COLOR}"/>`,
      );
    if (request.firstToken !== null)
      parts.push(
        `<line x1="${axes.x(request.firstToken)}" y1="${top}" x2="${axes.x(request.firstToken)}" y2="${top + bar}" stroke="${FIRST_TOKEN_COLOR}" stroke-width="1.5"/>`,
      );
    if (request.finished !== null)
      parts.push(
        `<line class="finish" x1="${axes.x(request.finished)}" y1="${top}" x2="${axes.x(request.finished)}" y2="${top + bar}" stroke="${COLORS.ink}" stroke-width="2"/>`,
      );
    parts.push(`</g>`);
  });
  parts.push(`</g>`);
  return parts.join("\n");
}

/**
 * Gantt panels for each policy over the same seconds, then KV slots allocated and filled under
 * the cache's capacity (every policy runs with the same KV memory).
 */
export function compareChart(policies: readonly PolicyTimeline[]): string {
  const end = Math.max(1e-3, ...policies.map((p) => endOf(p.timeline)));
  const numRequests = Math.max(1, ...policies.map((p) => p.timeline.requests.length));
  const rowHeight = Math.min(12, Math.max(1.5, 320 / numRequests));
  const ganttHeight = Math.ceil(rowHeight * numRequests);
  const parts: string[] = [];
  let top = 40;
  parts.push(
    `<text x="${LEFT}" y="20" font-size="16" font-weight="bold">Static vs continuous batching: request timelines and KV memory</text>`,
  );
  parts.push(
    legend(LEFT, top, [
      { label: "waiting (arrival to first scheduled)", color: WAIT_COLOR },
      { label: "running", color: RUN_COLOR },
      { label: "idle: done, returned when its batch ends", color: IDLE_COLOR },
      { label: "first token", color: FIRST_TOKEN_COLOR, line: true },
      { label: "finished", color: COLORS.ink, line: true },
    ]),
  );
  top += 40;
  for (const policy of policies) {
    const axes = new Axes({ x: LEFT, y: top, width: PLOT_WIDTH, height: ganttHeight }, end, numRequests);
    parts.push(
      axes.draw(
        `${policy.name} batching: ${policy.timeline.requests.length} requests`,
        "seconds since start",
        "request",
        false,
      ),
    );
    parts.push(`<text x="${LEFT - 8}" y="${top + 10}" text-anchor="end">0</text>`);
    parts.push(`<text x="${LEFT - 8}" y="${top + ganttHeight}" text-anchor="end">${numRequests - 1}</text>`);
    parts.push(gantt(axes, policy, rowHeight));
    top += ganttHeight + 70;
  }
  const maxSlots = Math.max(1, ...policies.map((p) => p.timeline.maxSlots));
  const kvAxes = new Axes({ x: LEFT, y: top, width: PLOT_WIDTH, height: 220 }, end, maxSlots);
  const capacity: Series = {
    label: `KV capacity: ${maxSlots} token slots`,
    color: COLORS.gray,
    dashed: true,
    points: [
      [0, maxSlots],
      [kvAxes.xMax, maxSlots],
    ],
  };
  const series: Series[] = policies.flatMap((policy, i) => {
    const color = POLICY_COLORS[i % POLICY_COLORS.length]!;
    const { kv } = policy.timeline;
    // A step holds what it allocated from its start; everything is free again after the last one.
    const allocated = kv.map((s) => [s.started, s.allocatedSlots] as const);
    const last = kv.at(-1);
    return [
      {
        label: `${policy.name}: allocated slots`,
        color,
        points: [[0, 0], ...allocated, ...(last ? [[last.seconds, 0] as const] : [])],
      },
      {
        label: `${policy.name}: slots holding tokens`,
        color,
        dashed: true,
        points: [[0, 0], ...kv.map((s) => [s.seconds, s.tokensStored] as const)],
      },
    ];
  });
  parts.push(kvAxes.draw("KV cache memory over time", "seconds since start", "token slots"));
  parts.push(kvAxes.lines([capacity, ...series], true));
  // A legend row per policy (the capacity first), so that any number of policies fits the width.
  const rows = policies.map((_, i) => series.slice(2 * i, 2 * i + 2));
  rows[0]?.unshift(capacity);
  rows.forEach((row, r) => {
    const items = row.map((s) => ({ label: s.label, color: s.color, line: true }));
    parts.push(legend(LEFT, top + 220 + 55 + 18 * r, items));
  });
  const height = top + 220 + 75 + 18 * Math.max(0, rows.length - 1);
  return svgDocument(WIDTH, height, "bench compare: request timelines and KV memory", parts.join("\n"));
}

/** Allocated KV slots sampled at `columns` even times over [0, end], as a share of capacity. */
function kvUseOverTime(timeline: RunTimeline, end: number, columns: number): number[] {
  const values: number[] = [];
  const runEnd = endOf(timeline);
  let next = 0;
  let current = 0;
  for (let column = 0; column < columns; column++) {
    const at = (column * end) / columns;
    if (at > runEnd) break;
    while (next < timeline.kv.length && timeline.kv[next]!.started <= at) current = timeline.kv[next++]!.allocatedSlots;
    values.push(current / Math.max(1, timeline.maxSlots));
  }
  return values;
}

/** "KV in use" lines for the terminal, every policy on the same time scale and capacity. */
export function kvSparklines(policies: readonly PolicyTimeline[], columns = 60): string[] {
  const end = Math.max(1e-3, ...policies.map((p) => endOf(p.timeline)));
  const width = Math.max(...policies.map((p) => p.name.length));
  return policies.map(
    (p) =>
      `  ${p.name.padEnd(width)} |${sparkline(kvUseOverTime(p.timeline, end, columns), columns, 1).padEnd(columns)}|`,
  );
}
