// Hub failures as ModelLoadErrors a user can act on: which repo, what the Hub said, and what to
// do about it (a token, a spelling, a network).
import { HubApiError } from "@huggingface/hub";
import { ModelLoadError } from "../errors.ts";
import type { HubSettings } from "./settings.ts";

/** A request that got no HTTP answer at all, told apart from the Hub answering with an error. */
class HubUnreachableError extends Error {}

/** fetch, with failures to connect marked as such (the library lets them through unmarked). */
export function markingUnreachable(fetchImpl: typeof fetch = fetch): typeof fetch {
  const marked = async (input: string | URL | Request, init?: RequestInit) => {
    try {
      return await fetchImpl(input, init);
    } catch (error) {
      throw new HubUnreachableError((error as Error).message ?? String(error));
    }
  };
  return Object.assign(marked, { preconnect: fetchImpl.preconnect });
}

/** What the Hub said, without the request URL the library appends (long, and already implied). */
function hubMessage(error: HubApiError): string {
  const said = error.data?.error;
  return typeof said === "string" ? said : error.message;
}

export function hubLoadError(error: unknown, repo: string, revision: string, settings: HubSettings): unknown {
  const { endpoint, cacheDir } = settings;
  if (error instanceof HubUnreachableError) {
    return new ModelLoadError(
      repo,
      `could not reach HF_ENDPOINT ${endpoint} (${error.message}) and the model is not cached in ${cacheDir}`,
    );
  }
  if (!(error instanceof HubApiError)) return error;
  const tokenHint = settings.token
    ? "the token in HF_TOKEN was refused: check that it is valid and that its account has access"
    : "set HF_TOKEN to a token of an account with access";
  switch (error.statusCode) {
    case 401:
      return new ModelLoadError(
        repo,
        `${endpoint} refused access (401): the repository is private or gated, or does not exist; ${tokenHint}`,
      );
    case 403:
      return new ModelLoadError(
        repo,
        `${endpoint} refused access (403): the repository is gated; request access at ${endpoint}/${repo} and ${tokenHint}`,
      );
    case 404:
      return new ModelLoadError(
        repo,
        `not found on ${endpoint} (${hubMessage(error)}): check the repo id and the revision "${revision}"`,
      );
    default:
      return new ModelLoadError(repo, `download from ${endpoint} failed (${error.statusCode}): ${hubMessage(error)}`);
  }
}
