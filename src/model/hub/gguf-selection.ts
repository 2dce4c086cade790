// Which GGUF file of a Hub repository a reference means: the one --gguf-file names, or the one
// whose name carries the quantization tag of vLLM's "Org/Repo-GGUF:Q4_K_M" form. Quantized repos
// hold one file per quantization, so exactly one must match.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { ModelLoadError } from "../errors.ts";
import { cachedCommit, snapshotDir } from "./cache.ts";

export type GgufSelection = { fileName: string } | { quant: string };

function describeSelection(selection: GgufSelection): string {
  return "fileName" in selection ? `--gguf-file ${selection.fileName}` : `the quantization tag ${selection.quant}`;
}

function matchingFiles(names: readonly string[], selection: GgufSelection): string[] {
  if ("fileName" in selection) return names.filter((name) => name === selection.fileName);
  const tag = selection.quant.toLowerCase();
  return names.filter((name) => name.endsWith(".gguf") && name.toLowerCase().includes(tag));
}

/** The selected file among a repo's file names; `repo` names the repo in messages. */
export function selectGgufFile(names: readonly string[], selection: GgufSelection, repo: string): string {
  const matches = matchingFiles(names, selection);
  if (matches.length === 1) return matches[0]!;
  const ggufNames = names.filter((name) => name.endsWith(".gguf"));
  const available = ggufNames.length === 0 ? "it has no .gguf files" : `its .gguf files: ${ggufNames.join(", ")}`;
  if (matches.length === 0) {
    throw new ModelLoadError(repo, `no file matches ${describeSelection(selection)} (${available})`);
  }
  throw new ModelLoadError(
    repo,
    `${matches.length} GGUF files match ${describeSelection(selection)}: ${matches.join(", ")}; name one with --gguf-file`,
  );
}

/** The selected file in the cached snapshot of `revision` when exactly one there matches, else null. */
export function cachedGgufFile(repoDir: string, revision: string, selection: GgufSelection): string | null {
  const commit = cachedCommit(repoDir, revision);
  const dir = commit === null ? null : snapshotDir(repoDir, commit);
  if (dir === null || !existsSync(dir)) return null;
  const matches = matchingFiles(readdirSync(dir), selection);
  return matches.length === 1 ? join(dir, matches[0]!) : null;
}
