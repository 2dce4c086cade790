// The Hugging Face cache layout, shared with huggingface_hub so either side reuses the other's
// downloads: models--Org--Name/{blobs/<etag>, snapshots/<commit>/<file> -> ../../blobs/<etag>,
// refs/<revision> = <commit>}.
import { existsSync, readFileSync } from "node:fs";
import { mkdir, rm, symlink, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { getRepoFolderName } from "@huggingface/hub";
import { readJsonFile } from "../errors.ts";

const COMMIT_HASH = /^[0-9a-f]{40}$/;
export const INDEX_FILE = "model.safetensors.index.json";

export function repoCacheDir(cacheDir: string, repo: string): string {
  return join(cacheDir, getRepoFolderName({ type: "model", name: repo }));
}

export function snapshotDir(repoDir: string, commit: string): string {
  return join(repoDir, "snapshots", commit);
}

export function blobPath(repoDir: string, blobName: string): string {
  return join(repoDir, "blobs", blobName);
}

/** The commit a revision stands for in the cache: a commit hash is itself, a branch or tag its ref. */
export function cachedCommit(repoDir: string, revision: string): string | null {
  if (COMMIT_HASH.test(revision)) return revision;
  const ref = join(repoDir, "refs", revision);
  return existsSync(ref) ? readFileSync(ref, "utf8").trim() : null;
}

/** The shards an index names, read from the index itself. */
export function indexedShards(indexFile: string): string[] {
  const index = readJsonFile(indexFile) as { weight_map?: Record<string, string> };
  return [...new Set(Object.values(index.weight_map ?? {}))];
}

/**
 * A cached snapshot complete enough to load: config.json (which downloads last, so it marks a
 * finished download) and the weights, since another tool may have cached only part of the repo.
 */
export function cachedSnapshot(repoDir: string, revision: string): string | null {
  const commit = cachedCommit(repoDir, revision);
  if (commit === null) return null;
  const dir = snapshotDir(repoDir, commit);
  if (!existsSync(join(dir, "config.json"))) return null;
  const index = join(dir, INDEX_FILE);
  const weights = existsSync(index) ? indexedShards(index) : ["model.safetensors"];
  return weights.every((file) => existsSync(join(dir, file))) ? dir : null;
}

export async function writeRef(repoDir: string, revision: string, commit: string): Promise<void> {
  if (revision === commit) return;
  const ref = join(repoDir, "refs", revision);
  await mkdir(dirname(ref), { recursive: true });
  await writeFile(ref, commit);
}

/** Points snapshots/<commit>/<file> at its blob; relative, so the cache survives being moved. */
export async function linkSnapshotFile(repoDir: string, commit: string, file: string, blobName: string): Promise<void> {
  const pointer = join(snapshotDir(repoDir, commit), file);
  await mkdir(dirname(pointer), { recursive: true });
  await rm(pointer, { force: true });
  await symlink(relative(dirname(pointer), blobPath(repoDir, blobName)), pointer);
}
