// The Host names the server answers to, a guard against DNS rebinding: a web page whose own name
// its DNS server re-points at 127.0.0.1 reaches a loopback server from the visitor's browser, but
// with its own name in the Host header. A server bound to loopback answers loopback names only.

import { quoteInput } from "../quote-input.ts";
import { ApiError } from "./errors.ts";

/** Host names (no port; IPv6 in brackets), or null for any. */
export type AllowedHosts = ReadonlySet<string> | null;

const LOOPBACK_NAMES = ["localhost", "127.0.0.1", "[::1]"];

function isLoopback(bindHost: string): boolean {
  return bindHost === "localhost" || bindHost.startsWith("127.") || bindHost === "::1" || bindHost === "[::1]";
}

/** An IPv6 address in brackets, as a Host header writes it; names in lower case. */
function normalize(host: string): string {
  const name = host.trim().toLowerCase();
  return name.includes(":") && !name.startsWith("[") ? `[${name}]` : name;
}

/**
 * The --allowed-hosts list (comma-separated, "*" for any); without it, the loopback names when the
 * server is bound to a loopback address, and any host otherwise (the address is reached under names
 * the server cannot know).
 */
export function allowedHosts(option: string | undefined, bindHost: string): AllowedHosts {
  if (option === undefined) return isLoopback(bindHost) ? new Set(LOOPBACK_NAMES) : null;
  const names = option.split(",").map(normalize).filter(Boolean);
  return names.includes("*") ? null : new Set(names);
}

/** The Host header's name without its port. */
function hostName(header: string): string {
  const name = header.startsWith("[") ? header.slice(0, header.indexOf("]") + 1) : header.split(":")[0]!;
  return name.toLowerCase();
}

/** A request for a name the server does not answer to is a 421 (RFC 9110: misdirected). */
export function checkHost(request: Request, allowed: AllowedHosts): void {
  if (allowed === null) return;
  const header = request.headers.get("host") ?? "";
  if (allowed.has(hostName(header))) return;
  throw new ApiError(
    421,
    `this server does not answer to the host \`${quoteInput(header)}\` (it answers to ${[...allowed].join(", ")}; see --allowed-hosts)`,
  );
}
