// What a request constrains its output to, as vLLM's StructuredOutputsParams: exactly one of a
// JSON schema, any JSON object, a regular expression, a list of choices, an EBNF grammar or an
// xgrammar structural tag. Plain data, so it crosses to the engine core's thread as it is.

import { xgrammarJsonSchema } from "./json-schema.ts";

export interface StructuredOutputs {
  /** A JSON schema, as an object or its JSON text. */
  json?: Record<string, unknown> | boolean | string;
  /** Any JSON object (OpenAI's response_format json_object). */
  jsonObject?: boolean;
  regex?: string;
  choice?: readonly string[];
  /** An EBNF grammar as xgrammar reads it (root rule `root`). */
  grammar?: string;
  /** An xgrammar structural tag (tool calls inside free text), as its JSON text. */
  structuralTag?: string;
  /**
   * The grammar starts once these token ids have appeared in the output, in this order (the end
   * of a reasoning block, e.g. `</think>`); before that the output is free.
   */
  startAfterTokenIds?: readonly number[];
}

export type ConstraintKind = "json" | "jsonObject" | "regex" | "choice" | "grammar" | "structuralTag";

const KINDS: readonly ConstraintKind[] = ["json", "jsonObject", "regex", "choice", "grammar", "structuralTag"];

export class StructuredOutputsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StructuredOutputsError";
  }
}

/** The one constraint a request sets; two (or none) are the client's error. */
export function constraintKind(outputs: StructuredOutputs): ConstraintKind {
  const set = KINDS.filter((kind) => outputs[kind] !== undefined && outputs[kind] !== false);
  if (set.length !== 1) {
    throw new StructuredOutputsError(
      set.length === 0
        ? "structured outputs need one of json, json_object, regex, choice, grammar or structural_tag"
        : `only one kind of structured output may be set per request, got ${set.join(" and ")}`,
    );
  }
  if (outputs.choice !== undefined && outputs.choice.length === 0)
    throw new StructuredOutputsError("choice must list at least one string");
  return set[0]!;
}

/** A grammar in the form the compiler takes; equal sources compile to the same grammar. */
export interface GrammarSource {
  kind: "json_schema" | "ebnf" | "structural_tag";
  text: string;
}

/** An xgrammar EBNF string literal: JSON's escapes (\" \\ \n \uXXXX) are also xgrammar's. */
function ebnfLiteral(text: string): string {
  return JSON.stringify(text);
}

export function grammarSource(outputs: StructuredOutputs): GrammarSource {
  switch (constraintKind(outputs)) {
    case "json": {
      const schema = parsedSchema(outputs.json!);
      // Text that is not JSON goes to xgrammar as it is, which says why.
      const text = schema === undefined ? String(outputs.json) : JSON.stringify(xgrammarJsonSchema(schema));
      return { kind: "json_schema", text };
    }
    case "jsonObject":
      // OpenAI's json_object is an object, not any JSON value.
      return { kind: "json_schema", text: JSON.stringify({ type: "object" }) };
    case "regex":
      return {
        kind: "structural_tag",
        text: JSON.stringify({ type: "structural_tag", format: { type: "regex", pattern: outputs.regex } }),
      };
    case "choice":
      return { kind: "ebnf", text: `root ::= ${outputs.choice!.map(ebnfLiteral).join(" | ")}` };
    case "grammar":
      return { kind: "ebnf", text: outputs.grammar! };
    case "structuralTag":
      return { kind: "structural_tag", text: outputs.structuralTag! };
  }
}

/** A schema given as JSON text, parsed; undefined if the text is not JSON. */
function parsedSchema(schema: NonNullable<StructuredOutputs["json"]>): unknown {
  if (typeof schema !== "string") return schema;
  try {
    return JSON.parse(schema);
  } catch {
    return undefined;
  }
}

export function grammarKey(source: GrammarSource): string {
  return `${source.kind}\n${source.text}`;
}
