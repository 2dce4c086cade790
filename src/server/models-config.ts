// The --models-config file: a JSON list of the models to serve, each with engine options of its
// own, named as CoreOptions names them. Unknown keys are errors, so a typo does not silently
// fall back to a default. Paths are read as on the command line, from the working directory.
import { z } from "zod";

const positiveInteger = z.number().int().min(1);

const modelEntrySchema = z.strictObject({
  model: z.string().min(1),
  servedModelName: z.string().min(1).optional(),
  /** A Jinja chat template file, instead of the tokenizer's. */
  chatTemplate: z.string().optional(),
  device: z.enum(["auto", "cpu", "cuda"]).optional(),
  dtype: z.enum(["auto", "float32", "float16", "bfloat16"]).optional(),
  loadFormat: z.enum(["auto", "dummy"]).optional(),
  seed: z.number().int().min(0).optional(),
  numThreads: z.number().int().min(0).optional(),
  blockSize: positiveInteger.optional(),
  maxNumSeqs: positiveInteger.optional(),
  maxNumBatchedTokens: positiveInteger.optional(),
  maxModelLen: positiveInteger.optional(),
  enablePrefixCaching: z.boolean().optional(),
  enableChunkedPrefill: z.boolean().optional(),
  scheduling: z.enum(["continuous", "static"]).optional(),
  /** Bytes, or a size with a unit ("64MiB"), read as --kv-cache-memory reads it. */
  kvCacheMemory: z.union([positiveInteger, z.string()]).optional(),
  /** This model's share of the device's memory. */
  gpuMemoryUtilization: z.number().gt(0).max(1).optional(),
});

const modelsConfigSchema = z.array(modelEntrySchema).min(1);

export type ModelEntry = z.infer<typeof modelEntrySchema>;

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
  return result.data;
}
