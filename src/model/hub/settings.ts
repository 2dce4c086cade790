// Where the Hub is and who we are to it, read from the environment variables huggingface_hub
// defines, so a machine set up for transformers or vLLM works unchanged.
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { getHFHubCachePath } from "@huggingface/hub";

export interface HubSettings {
  /** HF_ENDPOINT, without a trailing slash. */
  endpoint: string;
  token: string | undefined;
  /** The hub cache root (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub). */
  cacheDir: string;
  /** HF_HUB_OFFLINE: the cache only, never the network. */
  offline: boolean;
}

const TRUE_VALUES = new Set(["1", "true", "yes", "on"]);

/** HF_TOKEN, else the token `hf auth login` saved (HF_TOKEN_PATH or HF_HOME/token). */
function readToken(env: NodeJS.ProcessEnv): string | undefined {
  if (env.HF_TOKEN) return env.HF_TOKEN.trim();
  const hfHome = env.HF_HOME ?? join(env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "huggingface");
  const tokenPath = env.HF_TOKEN_PATH ?? join(hfHome, "token");
  return existsSync(tokenPath) ? readFileSync(tokenPath, "utf8").trim() || undefined : undefined;
}

/** Read at each call, not at import, so the environment of the moment (and of tests) applies. */
export function hubSettings(): HubSettings {
  const env = process.env;
  return {
    endpoint: (env.HF_ENDPOINT || "https://huggingface.co").replace(/\/+$/, ""),
    token: readToken(env),
    // The library's own lookup, which follows the same variables in huggingface_hub's order.
    cacheDir: getHFHubCachePath(),
    offline: TRUE_VALUES.has((env.HF_HUB_OFFLINE ?? "").toLowerCase()),
  };
}
