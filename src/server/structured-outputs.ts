// A request's output constraint, from any of the ways clients spell it: OpenAI's response_format,
// vLLM's structured_outputs, and vLLM's older guided_* fields. Two constraints in one request are
// the client's error, and so is a schema, regex or grammar xgrammar refuses: both are 400s before
// any token is generated.
import { z } from "zod";
import {
  grammarSource,
  type StructuredOutputs,
  StructuredOutputsError,
} from "../engine/structured-output/structured-outputs.ts";
import type { ModelContext } from "./context.ts";
import { ApiError } from "./errors.ts";

const jsonSchema = z.union([z.record(z.string(), z.unknown()), z.boolean(), z.string()]);

export const structuredOutputFields = {
  response_format: z
    .looseObject({
      type: z.string(),
      json_schema: z
        .looseObject({
          name: z.string().nullish(),
          schema: z.record(z.string(), z.unknown()).nullish(),
          strict: z.boolean().nullish(),
        })
        .nullish(),
    })
    .nullish(),
  structured_outputs: z
    .strictObject({
      json: jsonSchema.nullish(),
      regex: z.string().nullish(),
      choice: z.array(z.string()).nullish(),
      grammar: z.string().nullish(),
      json_object: z.boolean().nullish(),
      structural_tag: z.string().nullish(),
    })
    .nullish(),
  guided_json: jsonSchema.nullish(),
  guided_regex: z.string().nullish(),
  guided_choice: z.array(z.string()).nullish(),
  guided_grammar: z.string().nullish(),
};

type StructuredOutputFields = {
  [K in keyof typeof structuredOutputFields]?: z.infer<(typeof structuredOutputFields)[K]>;
};

/** response_format's constraint; "text" is none. */
function responseFormat(format: NonNullable<StructuredOutputFields["response_format"]>): StructuredOutputs | null {
  switch (format.type) {
    case "text":
      return null;
    case "json_object":
      return { jsonObject: true };
    case "json_schema": {
      // OpenAI requires the schema; an absent one allows any JSON value the schema `true` allows.
      const schema = format.json_schema?.schema;
      if (!format.json_schema)
        throw new ApiError(400, "response_format json_schema needs json_schema", "response_format");
      return { json: schema ?? true };
    }
    default:
      throw new ApiError(
        400,
        `response_format type "${format.type}" is not supported (use text, json_object or json_schema)`,
        "response_format.type",
      );
  }
}

/** Each way of asking, by the field that asked, with what it asks for. */
function requestedConstraints(body: StructuredOutputFields): [string, StructuredOutputs][] {
  const found: [string, StructuredOutputs][] = [];
  const add = (field: string, outputs: StructuredOutputs | null) => {
    if (outputs) found.push([field, outputs]);
  };
  if (body.response_format) add("response_format", responseFormat(body.response_format));
  const so = body.structured_outputs;
  if (so) {
    add("structured_outputs.json", so.json != null ? { json: so.json } : null);
    add("structured_outputs.regex", so.regex != null ? { regex: so.regex } : null);
    add("structured_outputs.choice", so.choice != null ? { choice: so.choice } : null);
    add("structured_outputs.grammar", so.grammar != null ? { grammar: so.grammar } : null);
    add("structured_outputs.json_object", so.json_object ? { jsonObject: true } : null);
    add("structured_outputs.structural_tag", so.structural_tag != null ? { structuralTag: so.structural_tag } : null);
  }
  add("guided_json", body.guided_json != null ? { json: body.guided_json } : null);
  add("guided_regex", body.guided_regex != null ? { regex: body.guided_regex } : null);
  add("guided_choice", body.guided_choice != null ? { choice: body.guided_choice } : null);
  add("guided_grammar", body.guided_grammar != null ? { grammar: body.guided_grammar } : null);
  return found;
}

/** The request's constraint, checked by xgrammar; null when the output is free. */
export async function structuredOutputs(
  context: ModelContext,
  body: StructuredOutputFields,
  fromTools: StructuredOutputs | null = null,
): Promise<StructuredOutputs | null> {
  const found = requestedConstraints(body);
  if (fromTools) found.push(["tool_choice", fromTools]);
  if (found.length === 0) return null;
  if (found.length > 1) {
    throw new ApiError(
      400,
      `only one output constraint may be set per request, got ${found.map(([field]) => field).join(" and ")}`,
      found[1]![0],
    );
  }
  const [field, outputs] = found[0]!;
  await checkConstraint(context, field, outputs);
  return outputs;
}

export async function checkConstraint(context: ModelContext, field: string, outputs: StructuredOutputs): Promise<void> {
  let source: ReturnType<typeof grammarSource>;
  try {
    source = grammarSource(outputs);
  } catch (error) {
    if (error instanceof StructuredOutputsError) throw new ApiError(400, `${field}: ${error.message}`, field);
    throw error;
  }
  const error = await context.grammarChecker.check(source);
  if (error !== null) throw new ApiError(400, `${field} is not valid: ${error}`, field);
}
