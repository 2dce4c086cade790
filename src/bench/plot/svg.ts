// Hand-written SVG for the benchmarks' `--plot`: linear scales with nice ticks, framed panels with
// axes, titles and legends, line series, and the standalone document (or an HTML page around it).
import { writeFileSync } from "node:fs";

export const COLORS = {
  blue: "#3b75af",
  orange: "#ef8636",
  green: "#3a923a",
  red: "#c03d3e",
  purple: "#9372b2",
  gray: "#8c8c8c",
  ink: "#222",
};

export interface Frame {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface Series {
  label: string;
  color: string;
  points: readonly (readonly [number, number])[];
  dashed?: boolean;
}

export interface LegendItem {
  label: string;
  color: string;
  /** A line sample instead of a filled box. */
  line?: boolean;
}

export function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

const round = (value: number) => Number(value.toFixed(2));

/** Ticks at 1, 2 or 5 times a power of ten, about `target` of them, covering [0, max]. */
export function niceTicks(max: number, target = 6): number[] {
  if (!(max > 0)) return [0, 1];
  const rough = max / target;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough)!;
  const ticks: number[] = [];
  for (let i = 0; i * step < max + step * 1e-9; i++) ticks.push(Number((i * step).toPrecision(12)));
  if (ticks[ticks.length - 1]! < max) ticks.push(Number((ticks.length * step).toPrecision(12)));
  return ticks;
}

export function formatTick(value: number): string {
  if (value === 0) return "0";
  if (Math.abs(value) >= 10_000) return `${Number((value / 1000).toPrecision(4))}k`;
  return String(Number(value.toPrecision(4)));
}

/** Maps [0, domainMax] onto the frame, x left to right and y bottom to top. */
export class Axes {
  readonly xTicks: number[];
  readonly yTicks: number[];

  constructor(
    readonly frame: Frame,
    xMax: number,
    yMax: number,
  ) {
    this.xTicks = niceTicks(xMax);
    this.yTicks = niceTicks(yMax, 5);
  }

  get xMax() {
    return this.xTicks[this.xTicks.length - 1]!;
  }

  get yMax() {
    return this.yTicks[this.yTicks.length - 1]!;
  }

  x(value: number): number {
    return round(this.frame.x + (value / this.xMax) * this.frame.width);
  }

  y(value: number): number {
    return round(this.frame.y + this.frame.height - (value / this.yMax) * this.frame.height);
  }

  /** Frame, grid, ticks with labels, axis titles and the panel title. */
  draw(title: string, xLabel: string, yLabel: string, yTicks = true): string {
    const { x, y, width, height } = this.frame;
    const bottom = y + height;
    const parts = [
      `<g class="axes">`,
      `<rect x="${x}" y="${y}" width="${width}" height="${height}" fill="none" stroke="#bbb"/>`,
    ];
    for (const tick of this.xTicks) {
      const at = this.x(tick);
      parts.push(`<line x1="${at}" y1="${y}" x2="${at}" y2="${bottom}" stroke="#eee"/>`);
      parts.push(`<line x1="${at}" y1="${bottom}" x2="${at}" y2="${bottom + 5}" stroke="#555"/>`);
      parts.push(`<text x="${at}" y="${bottom + 17}" text-anchor="middle">${formatTick(tick)}</text>`);
    }
    if (yTicks) {
      for (const tick of this.yTicks) {
        const at = this.y(tick);
        parts.push(`<line x1="${x}" y1="${at}" x2="${x + width}" y2="${at}" stroke="#eee"/>`);
        parts.push(`<line x1="${x - 5}" y1="${at}" x2="${x}" y2="${at}" stroke="#555"/>`);
        parts.push(`<text x="${x - 8}" y="${at + 4}" text-anchor="end">${formatTick(tick)}</text>`);
      }
    }
    parts.push(`<text x="${x + width / 2}" y="${bottom + 34}" text-anchor="middle">${escapeXml(xLabel)}</text>`);
    parts.push(
      `<text transform="translate(${x - 46} ${y + height / 2}) rotate(-90)" text-anchor="middle">${escapeXml(yLabel)}</text>`,
    );
    parts.push(
      `<text class="title" x="${x}" y="${y - 10}" font-weight="bold" font-size="14">${escapeXml(title)}</text>`,
    );
    parts.push(`</g>`);
    return parts.join("\n");
  }

  /** A polyline per series; steps (hold the value until the next point) when `step` is set. */
  lines(series: readonly Series[], step = false): string {
    return series
      .filter((s) => s.points.length > 0)
      .map((s) => {
        const coords: string[] = [];
        s.points.forEach(([px, py], i) => {
          if (step && i > 0) coords.push(`${this.x(px)},${this.y(s.points[i - 1]![1])}`);
          coords.push(`${this.x(px)},${this.y(py)}`);
        });
        const dash = s.dashed ? ` stroke-dasharray="6 3"` : "";
        return `<polyline class="series" fill="none" stroke="${s.color}" stroke-width="1.8"${dash} points="${coords.join(" ")}"><title>${escapeXml(s.label)}</title></polyline>`;
      })
      .join("\n");
  }
}

/** A row of colour samples and labels starting at (x, y). */
export function legend(x: number, y: number, items: readonly LegendItem[]): string {
  const parts = [`<g class="legend">`];
  let at = x;
  for (const item of items) {
    parts.push(
      item.line
        ? `<line x1="${at}" y1="${y - 4}" x2="${at + 16}" y2="${y - 4}" stroke="${item.color}" stroke-width="2.5"/>`
        : `<rect x="${at}" y="${y - 10}" width="16" height="10" fill="${item.color}"/>`,
    );
    parts.push(`<text x="${at + 21}" y="${y}">${escapeXml(item.label)}</text>`);
    at += 30 + item.label.length * 6.5;
  }
  parts.push(`</g>`);
  return parts.join("\n");
}

export function svgDocument(width: number, height: number, title: string, body: string): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11" fill="#222">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    body,
    `</svg>`,
    "",
  ].join("\n");
}

export function htmlPage(title: string, svg: string): string {
  return `<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>${escapeXml(title)}</title></head>\n<body style="margin:0">\n${svg}</body>\n</html>\n`;
}

/** Writes the SVG to `path`, inside an HTML page when the name ends in .html. */
export function writePlot(path: string, title: string, svg: string): void {
  writeFileSync(path, /\.html?$/i.test(path) ? htmlPage(title, svg) : svg);
}
