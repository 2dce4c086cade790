// Fetches the files a model needs from the Hub into the cache. Built on the library's
// modelInfo / listFiles / downloadFile rather than its downloadFileToCacheDir, which writes the
// same layout but prints each file on stdout (console.debug, polluting piped output), reports no
// progress, and asks the Hub for paths-info once per file.
import { existsSync } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { downloadFile, type ListFileEntry, listFiles, modelInfo } from "@huggingface/hub";
import { ModelLoadError } from "../errors.ts";
import { blobPath, INDEX_FILE, indexedShards, linkSnapshotFile, snapshotDir, writeRef } from "./cache.ts";
import { markingUnreachable } from "./errors.ts";
import { filesToDownload, findEntry } from "./files.ts";
import { type GgufSelection, selectGgufFile } from "./gguf-selection.ts";
import { type DownloadProgress, stderrProgress } from "./progress.ts";
import type { HubSettings } from "./settings.ts";

interface Download {
  repo: string;
  commit: string;
  repoDir: string;
  access: { hubUrl: string; accessToken: string | undefined; fetch: typeof fetch };
}

const SILENT: DownloadProgress = { startFile() {}, advance() {}, finish() {} };

/** The blob name huggingface_hub gives a file: its ETag, i.e. the LFS sha256 or the git object id. */
function blobName(entry: ListFileEntry): string | undefined {
  return entry.lfs?.oid ?? entry.oid;
}

function hasBlob(repoDir: string, entry: ListFileEntry): boolean {
  const name = blobName(entry);
  return name !== undefined && existsSync(blobPath(repoDir, name));
}

/** Streams one file into blobs/ (through .incomplete, so a broken transfer never looks whole) and links it. */
async function fetchFile(download: Download, entry: ListFileEntry, progress: DownloadProgress): Promise<void> {
  const { repo, commit, repoDir } = download;
  const where = `${repo}/${entry.path}`;
  const name = blobName(entry);
  if (name === undefined) throw new ModelLoadError(where, "the Hub listed no object id for this file");
  if (!hasBlob(repoDir, entry)) {
    const blob = blobPath(repoDir, name);
    progress.startFile(entry.path);
    const content = await downloadFile({
      ...download.access,
      repo: { type: "model", name: repo },
      path: entry.path,
      revision: commit,
    });
    if (content === null) throw new ModelLoadError(where, `listed at commit ${commit} but not downloadable`);
    const counted = content.stream().pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          progress.advance(chunk.byteLength);
          controller.enqueue(chunk);
        },
      }),
    );
    const incomplete = `${blob}.incomplete`;
    await mkdir(dirname(blob), { recursive: true });
    try {
      await Bun.write(incomplete, new Response(counted));
      const written = Bun.file(incomplete).size;
      if (written !== entry.size) throw new Error(`got ${written} of ${entry.size} bytes`);
    } catch (error) {
      await rm(incomplete, { force: true });
      throw new ModelLoadError(where, `download failed: ${error instanceof Error ? error.message : String(error)}`);
    }
    await rename(incomplete, blob);
  }
  await linkSnapshotFile(repoDir, commit, entry.path, name);
}

/** The commit `revision` stands for and the repo's top-level files there. */
async function listRevision(repo: string, revision: string, repoDir: string, settings: HubSettings) {
  const access = { hubUrl: settings.endpoint, accessToken: settings.token, fetch: markingUnreachable() };
  const { sha: commit } = await modelInfo({ ...access, name: repo, revision, additionalFields: ["sha"] });
  const listing = await Array.fromAsync(
    listFiles({ ...access, repo: { type: "model", name: repo }, revision: commit }),
  );
  const download: Download = { repo, commit, repoDir, access };
  return { download, listing };
}

/** Fetches `entries` not yet in the snapshot, with one progress line for them all. */
async function fetchMissing(download: Download, entries: ListFileEntry[]): Promise<void> {
  const dir = snapshotDir(download.repoDir, download.commit);
  // Files of an interrupted download, or blobs shared with another revision, are not fetched again.
  const unlinked = entries.filter((entry) => !existsSync(join(dir, entry.path)));
  const unfetched = unlinked.filter((entry) => !hasBlob(download.repoDir, entry));
  const totalBytes = unfetched.reduce((sum, entry) => sum + entry.size, 0);
  const label = `${download.repo}@${download.commit.slice(0, 8)}`;
  const progress = unfetched.length > 0 ? stderrProgress(label, unfetched.length, totalBytes) : SILENT;
  try {
    for (const entry of unlinked) await fetchFile(download, entry, progress);
  } finally {
    // Ends the progress line, so an error prints on a line of its own.
    progress.finish();
  }
}

/** Downloads what the model needs at `revision` into the cache; returns the snapshot directory. */
export async function downloadSnapshot(
  repo: string,
  revision: string,
  repoDir: string,
  settings: HubSettings,
): Promise<string> {
  const { download, listing } = await listRevision(repo, revision, repoDir, settings);
  const { commit } = download;
  const dir = snapshotDir(repoDir, commit);

  if (!findEntry(listing, "config.json")) {
    const hasGguf = listing.some((entry) => entry.path.endsWith(".gguf"));
    const hint = hasGguf
      ? "; it holds GGUF files: pick one with --gguf-file NAME or the Org/Name:QUANT form"
      : ": not a Hugging Face transformers model repository";
    throw new ModelLoadError(repo, `no config.json at commit ${commit}${hint}`);
  }
  const index = findEntry(listing, INDEX_FILE);
  if (index) await fetchFile(download, index, SILENT);
  const files = filesToDownload(listing, index ? indexedShards(join(dir, INDEX_FILE)) : null);
  if (!files.some((entry) => entry.path.endsWith(".safetensors"))) {
    throw new ModelLoadError(
      repo,
      `no safetensors weights at commit ${commit} (vllm-ts does not load .bin or .pth; for .gguf, name the file with --gguf-file)`,
    );
  }
  await fetchMissing(download, files);
  await writeRef(repoDir, revision, commit);
  return dir;
}

/** Downloads the selected GGUF file of `revision` into the cache; returns its path. */
export async function downloadGgufFile(
  repo: string,
  revision: string,
  selection: GgufSelection,
  repoDir: string,
  settings: HubSettings,
): Promise<string> {
  const { download, listing } = await listRevision(repo, revision, repoDir, settings);
  const files = listing.filter((entry) => entry.type === "file");
  const name = selectGgufFile(
    files.map((entry) => entry.path),
    selection,
    repo,
  );
  await fetchMissing(download, [findEntry(files, name)!]);
  await writeRef(repoDir, revision, download.commit);
  return join(snapshotDir(repoDir, download.commit), name);
}
