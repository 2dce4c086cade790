// Debian's headless Chromium (`make chromium` installs it), as the rendering and browser tests
// run it: no sandbox (tests run as root), no GPU, nothing fetched from the network but the page,
// and a profile of its own in `profileDir`.
import { existsSync } from "node:fs";

const CHROMIUM = "/usr/bin/chromium";

/** Throws, saying how to install it, when Chromium is missing. */
export function requireChromium(): void {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium (make chromium) to run this test`);
}

/** The command line that opens `url` with `extraFlags`. */
export function chromiumCommand(profileDir: string, url: string, extraFlags: string[] = []): string[] {
  requireChromium();
  return [
    CHROMIUM,
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    `--user-data-dir=${profileDir}`,
    ...extraFlags,
    url,
  ];
}
