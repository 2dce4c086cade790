// Request parts discriminated by their `type` (Anthropic's content blocks, the Responses API's
// input items). A part of a type the schema does not know is refused with a sentence naming the
// type and the ones supported, where zod alone would say "Invalid input".
import { z } from "zod";
import { quoteInput } from "../quote-input.ts";

export function typedUnion<T extends z.ZodType>(types: readonly string[], what: string, schema: T) {
  return z.preprocess((value, context) => {
    const type = (value as { type?: unknown } | null)?.type;
    if (typeof type === "string" && !types.includes(type))
      context.issues.push({
        code: "custom",
        input: value,
        message: `${what} of type "${quoteInput(type)}" is not supported here (supported: ${types.join(", ")})`,
      });
    return value;
  }, schema);
}

/** Text where a list of parts may stand, as the one text part it means (so that errors in a list surface). */
export function textAsParts<T extends z.ZodType>(partType: string, schema: T) {
  return z.preprocess((value) => (typeof value === "string" ? [{ type: partType, text: value }] : value), schema);
}
