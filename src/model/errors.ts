// The one error type of model loading, which names the file at fault so a user can act on it,
// and the JSON reading every loader shares so its failures read alike.

import { existsSync, readFileSync } from "node:fs";

export class ModelLoadError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = "ModelLoadError";
  }
}

/** The parsed contents of a JSON file; a missing file or bad JSON is a ModelLoadError. */
export function readJsonFile(file: string): unknown {
  if (!existsSync(file)) throw new ModelLoadError(file, "file not found");
  const text = readFileSync(file, "utf8");
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ModelLoadError(file, `invalid JSON (${(error as Error).message})`);
  }
}
