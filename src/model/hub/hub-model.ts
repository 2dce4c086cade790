// Model references that name a Hugging Face Hub repository ("Org/Name", "Org/Name@revision"):
// loaded from the Hugging Face cache when it holds them, otherwise downloaded into it, so the
// cache is shared with transformers, vLLM and the hf CLI.
import { ModelLoadError } from "../errors.ts";
import { cachedSnapshot, repoCacheDir } from "./cache.ts";
import { downloadSnapshot } from "./download.ts";
import { hubLoadError } from "./errors.ts";
import { hubSettings } from "./settings.ts";

export interface HubReference {
  /** "Org/Name". */
  repo: string;
  /** A branch, tag or commit hash; "main" when the reference names none. */
  revision: string;
}

// Hub names start with a letter or digit, which keeps "./x/y" and "../x" out.
const HUB_REFERENCE = /^([A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*)(?:@(\S+))?$/;

/** The repo and revision a model reference names, or null when it cannot be a repo id. */
export function parseHubReference(model: string): HubReference | null {
  const match = HUB_REFERENCE.exec(model);
  return match ? { repo: match[1]!, revision: match[2] ?? "main" } : null;
}

/**
 * The snapshot directory of the model: a complete cached snapshot of the revision is used as is,
 * without asking the Hub (so a cached model starts offline); otherwise it is downloaded.
 */
export async function resolveHubModel({ repo, revision }: HubReference): Promise<string> {
  const settings = hubSettings();
  const repoDir = repoCacheDir(settings.cacheDir, repo);
  const cached = cachedSnapshot(repoDir, revision);
  if (cached !== null) return cached;
  if (settings.offline) {
    throw new ModelLoadError(
      repo,
      `revision "${revision}" is not in the Hugging Face cache (${settings.cacheDir}) and HF_HUB_OFFLINE is set`,
    );
  }
  // The library throws a bare TypeError on such tokens; this says where the token came from.
  if (settings.token !== undefined && !settings.token.startsWith("hf_")) {
    throw new ModelLoadError(repo, "the Hugging Face token (HF_TOKEN or the saved login) must start with hf_");
  }
  try {
    return await downloadSnapshot(repo, revision, repoDir, settings);
  } catch (error) {
    throw hubLoadError(error, repo, revision, settings);
  }
}
