// Model references that name a Hugging Face Hub repository ("Org/Name", "Org/Name@revision", and
// vLLM's "Org/Name-GGUF:QUANT" for one GGUF file of a repo): loaded from the Hugging Face cache
// when it holds them, otherwise downloaded into it, so the cache is shared with transformers, vLLM
// and the hf CLI.
import { ModelLoadError } from "../errors.ts";
import { cachedSnapshot, repoCacheDir } from "./cache.ts";
import { downloadGgufFile, downloadSnapshot } from "./download.ts";
import { hubLoadError } from "./errors.ts";
import { cachedGgufFile, type GgufSelection } from "./gguf-selection.ts";
import { type HubSettings, hubSettings } from "./settings.ts";

export interface HubReference {
  /** "Org/Name". */
  repo: string;
  /** A branch, tag or commit hash; "main" when the reference names none. */
  revision: string;
  /** "Org/Name:Q4_K_M": the repo's GGUF file whose name carries this quantization tag. */
  quant?: string;
}

// Hub names start with a letter or digit, which keeps "./x/y" and "../x" out.
const HUB_REFERENCE = /^([A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*)(?::([\w.-]+))?(?:@(\S+))?$/;

/** The repo, revision and quantization tag a model reference names, or null when it cannot be a repo id. */
export function parseHubReference(model: string): HubReference | null {
  const match = HUB_REFERENCE.exec(model);
  if (!match) return null;
  return { repo: match[1]!, revision: match[3] ?? "main", ...(match[2] === undefined ? {} : { quant: match[2] }) };
}

/** Checks what downloading needs, and turns Hub failures into errors a user can act on. */
async function fromCacheOrHub(
  { repo, revision }: HubReference,
  cached: (repoDir: string) => string | null,
  download: (repoDir: string, settings: HubSettings) => Promise<string>,
): Promise<string> {
  const settings = hubSettings();
  const repoDir = repoCacheDir(settings.cacheDir, repo);
  const found = cached(repoDir);
  if (found !== null) return found;
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
    return await download(repoDir, settings);
  } catch (error) {
    throw hubLoadError(error, repo, revision, settings);
  }
}

/**
 * The snapshot directory of the model: a complete cached snapshot of the revision is used as is,
 * without asking the Hub (so a cached model starts offline); otherwise it is downloaded.
 */
export async function resolveHubModel(reference: HubReference): Promise<string> {
  const { repo, revision } = reference;
  return fromCacheOrHub(
    reference,
    (repoDir) => cachedSnapshot(repoDir, revision),
    (repoDir, settings) => downloadSnapshot(repo, revision, repoDir, settings),
  );
}

/** The path of the repo's GGUF file that `ggufFile` (--gguf-file) or the reference's quantization tag selects. */
export async function resolveHubGgufFile(reference: HubReference, ggufFile: string | undefined): Promise<string> {
  const { repo, revision, quant } = reference;
  if (ggufFile !== undefined && quant !== undefined) {
    throw new ModelLoadError(repo, `name the GGUF file either with --gguf-file or with :${quant}, not both`);
  }
  const selection: GgufSelection = ggufFile !== undefined ? { fileName: ggufFile } : { quant: quant! };
  return fromCacheOrHub(
    reference,
    (repoDir) => cachedGgufFile(repoDir, revision, selection),
    (repoDir, settings) => downloadGgufFile(repo, revision, selection, repoDir, settings),
  );
}
