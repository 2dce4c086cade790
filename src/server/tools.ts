// Tool calling's request side, as OpenAI defines it and vLLM enforces it: which tools exist, and
// what tool_choice makes of the output. "required" and a named function are guaranteed by a
// grammar built from the tools' parameter schemas, so the arguments always parse and match;
// "auto" lets the model choose, and a tool-call parser finds the calls in its text.
import { z } from "zod";
import type { StructuredOutputs } from "../engine/structured-output/structured-outputs.ts";
import { quoteInput } from "../quote-input.ts";
import type { ModelContext } from "./context.ts";
import { ApiError } from "./errors.ts";

const functionTool = z.object({
  type: z.literal("function"),
  function: z.object({
    name: z.string().min(1),
    description: z.string().nullish(),
    parameters: z.record(z.string(), z.unknown()).nullish(),
    strict: z.boolean().nullish(),
  }),
});
export type FunctionTool = z.infer<typeof functionTool>;

export const toolFields = {
  tools: z.array(functionTool).nullish(),
  tool_choice: z
    .union([
      z.enum(["none", "auto", "required"]),
      z.object({ type: z.literal("function"), function: z.object({ name: z.string() }) }),
    ])
    .nullish(),
  parallel_tool_calls: z.boolean().nullish(),
};

type ToolFields = { [K in keyof typeof toolFields]?: z.infer<(typeof toolFields)[K]> };

/** What the output is, tool-wise. */
export type ToolMode =
  | { kind: "none" }
  /** Free text; the parser finds calls in it. */
  | { kind: "auto"; parser: string }
  /** The whole output is the named function's arguments object. */
  | { kind: "named"; name: string }
  /** The whole output is a JSON list of {name, parameters}. */
  | { kind: "required"; parallel: boolean };

/** A tool's parameters; a tool without them takes any object. */
function parametersSchema(tool: FunctionTool): Record<string, unknown> {
  return tool.function.parameters ?? { type: "object" };
}

export function toolMode(context: ModelContext, body: ToolFields): ToolMode {
  const tools = body.tools ?? [];
  // OpenAI's default: "auto" when tools are given, "none" otherwise.
  const choice = body.tool_choice ?? (tools.length > 0 ? "auto" : "none");
  if (choice === "none") return { kind: "none" };
  if (tools.length === 0) throw new ApiError(400, "tool_choice needs tools: the request lists none", "tool_choice");
  if (choice === "required") return { kind: "required", parallel: body.parallel_tool_calls ?? true };
  if (choice === "auto") {
    if (!context.enableAutoToolChoice || context.toolCallParser === null) {
      throw new ApiError(
        400,
        '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set',
        "tool_choice",
      );
    }
    return { kind: "auto", parser: context.toolCallParser };
  }
  const name = choice.function.name;
  if (!tools.some((tool) => tool.function.name === name)) {
    throw new ApiError(
      400,
      `tool_choice names the function "${quoteInput(name)}", which is not in tools (${quoteInput(tools.map((t) => t.function.name).join(", "))})`,
      "tool_choice",
    );
  }
  return { kind: "named", name };
}

/** The grammar that enforces a forced tool choice; null when the model chooses. */
export function toolConstraint(mode: ToolMode, tools: readonly FunctionTool[]): StructuredOutputs | null {
  if (mode.kind === "named") return { json: parametersSchema(tools.find((t) => t.function.name === mode.name)!) };
  if (mode.kind !== "required") return null;
  const call = (tool: FunctionTool) => ({
    type: "object",
    properties: { name: { type: "string", enum: [tool.function.name] }, parameters: parametersSchema(tool) },
    required: ["name", "parameters"],
  });
  return {
    json: {
      type: "array",
      minItems: 1,
      ...(mode.parallel ? {} : { maxItems: 1 }),
      items: tools.length === 1 ? call(tools[0]!) : { anyOf: tools.map(call) },
    },
  };
}
