// Which files of a repository a model needs: the configs, tokenizer and safetensors weights the
// loaders read, never the .bin/.pth/.gguf copies many repos also carry (often as large again).
import type { ListFileEntry } from "@huggingface/hub";

const SIDE_FILES = new Set([
  "generation_config.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "chat_template.jinja",
]);

/**
 * The files to fetch after the index (when there is one), in download order. With an index, only
 * the shards it names: some repos also ship a consolidated.safetensors of the same weights.
 * config.json comes last, so its presence in a snapshot means the download finished.
 */
export function filesToDownload(
  listing: readonly ListFileEntry[],
  indexedShards: readonly string[] | null,
): ListFileEntry[] {
  const files = listing.filter((entry) => entry.type === "file");
  // The listing is of the top level only, where the loaders look, so subfolder copies never count.
  const isWeight = (path: string) =>
    indexedShards === null ? path.endsWith(".safetensors") : indexedShards.includes(path);
  const weights = files.filter((entry) => isWeight(entry.path));
  const sideFiles = files.filter((entry) => SIDE_FILES.has(entry.path));
  const config = files.filter((entry) => entry.path === "config.json");
  return [...weights, ...sideFiles, ...config];
}

export function findEntry(listing: readonly ListFileEntry[], path: string): ListFileEntry | undefined {
  return listing.find((entry) => entry.type === "file" && entry.path === path);
}
