// Download progress on stderr: one redrawn line on a terminal; on a pipe or log file, a single
// line at the start, since carriage returns only clutter logs.

export interface DownloadProgress {
  startFile(path: string): void;
  advance(bytes: number): void;
  finish(): void;
}

const REDRAW_INTERVAL_MS = 100;

function formatBytes(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  for (; value >= 1000 && unit < units.length - 1; unit++) value /= 1000;
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export function stderrProgress(label: string, fileCount: number, totalBytes: number): DownloadProgress {
  const stream = process.stderr;
  if (!stream.isTTY) {
    stream.write(`Downloading ${label}: ${fileCount} files, ${formatBytes(totalBytes)}\n`);
    return { startFile() {}, advance() {}, finish() {} };
  }
  const startedAt = performance.now();
  let doneBytes = 0;
  let currentFile = "";
  let drawnAt = 0;
  const draw = () => {
    drawnAt = performance.now();
    const percent = totalBytes > 0 ? Math.floor((100 * doneBytes) / totalBytes) : 100;
    const rate = doneBytes / Math.max((drawnAt - startedAt) / 1000, 1e-3);
    const line = `Downloading ${label} ${percent}% ${formatBytes(doneBytes)}/${formatBytes(totalBytes)} ${formatBytes(rate)}/s ${currentFile}`;
    stream.write(`\r\x1b[2K${line.slice(0, Math.max((stream.columns || 80) - 1, 20))}`);
  };
  return {
    startFile(path) {
      currentFile = path;
      draw();
    },
    advance(bytes) {
      doneBytes += bytes;
      if (performance.now() - drawnAt >= REDRAW_INTERVAL_MS) draw();
    },
    finish() {
      currentFile = "";
      draw();
      stream.write("\n");
    },
  };
}
