// The constraint of structured-output benchmarks (`bench throughput --structured-output`,
// bench/structured-output.ts): a JSON schema whose every valid output is about as long as the
// unconstrained requests' outputs, so constrained and free runs generate comparable token counts.
import { readFileSync } from "node:fs";
import type { StructuredOutputs } from "../engine/structured-output/structured-outputs.ts";
import { UsageError } from "../usage-error.ts";

export const STRUCTURED_OUTPUT_CHOICES = "json | json_object | FILE.json";

/** About outputTokens tokens of JSON: a list of fixed-length short strings (~4 tokens each). */
export function benchmarkSchema(outputTokens: number): Record<string, unknown> {
  const items = Math.max(1, Math.ceil(outputTokens / 4));
  return {
    type: "array",
    items: { type: "string", minLength: 6, maxLength: 6 },
    minItems: items,
    maxItems: items,
  };
}

/** `--structured-output`: the benchmark's schema, any JSON object, or a JSON-schema file. */
export function benchmarkConstraint(value: string, outputTokens: number): StructuredOutputs {
  if (value === "json") return { json: benchmarkSchema(outputTokens) };
  if (value === "json_object") return { jsonObject: true };
  if (!value.endsWith(".json"))
    throw new UsageError(`--structured-output ${value}: expected ${STRUCTURED_OUTPUT_CHOICES}`);
  let text: string;
  try {
    text = readFileSync(value, "utf8");
  } catch (error) {
    throw new UsageError(`--structured-output ${value}: ${error instanceof Error ? error.message : String(error)}`);
  }
  try {
    return { json: JSON.parse(text) as Record<string, unknown> };
  } catch {
    throw new UsageError(`--structured-output ${value}: the file is not JSON`);
  }
}
