// The --models-config file: a JSON list of the models to serve, each with engine options of its
// own, named as the engine's option tables name them (src/engine/options.ts, from which the
// schema is derived). Unknown keys are errors, so a typo does not silently fall back to a
// default. Paths are read as on the command line, from the working directory.
import { z } from "zod";
import {
  ENGINE_OPTIONS,
  type EngineConfig,
  MODEL_OPTIONS,
  type ModelOptions,
  type OptionSpec,
} from "../engine/options.ts";

/** JSON values of an option: numbers, booleans and strings as they are; a size also as "64MiB". */
function valueSchema(spec: OptionSpec): z.ZodType {
  const value = spec.value;
  switch (value.kind) {
    case "integer":
      return z.number().int().min(value.min);
    case "fraction":
      return z.number().gt(0).max(1);
    case "boolean":
      return z.boolean();
    case "choice":
      return z.enum(value.choices as readonly [string, ...string[]]);
    case "bytes":
      return z.union([z.number().int().min(1), z.string()]);
    case "text":
      return z.string();
  }
}

const optionSchemas = Object.fromEntries(
  [...Object.entries(MODEL_OPTIONS), ...Object.entries(ENGINE_OPTIONS)].map(([key, spec]) => [
    key,
    valueSchema(spec).optional(),
  ]),
);

const modelEntrySchema = z.strictObject({
  model: z.string().min(1),
  servedModelName: z.string().min(1).optional(),
  /** A Jinja chat template file, instead of the tokenizer's. */
  chatTemplate: z.string().optional(),
  ...optionSchemas,
});

/** One entry: `gpuMemoryUtilization` is this model's share of the device; `kvCacheMemory` may have a unit. */
export type ModelEntry = { model: string; servedModelName?: string; chatTemplate?: string } & Partial<ModelOptions> &
  Partial<Omit<EngineConfig, "kvCacheMemory">> & { kvCacheMemory?: number | string };

const modelsConfigSchema = z.array(modelEntrySchema).min(1);

/** The file's models, or an error that names the file and the offending entry. */
export function parseModelsConfig(path: string, text: string): ModelEntry[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`${path} is not valid JSON: ${(error as Error).message}`);
  }
  const result = modelsConfigSchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const where = issue.path.length > 0 ? ` at ${issue.path.map(String).join(".")}` : "";
    throw new Error(`${path}${where}: ${issue.message}`);
  }
  // The schema was built from the same tables as the type.
  return result.data as ModelEntry[];
}
