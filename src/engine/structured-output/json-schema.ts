// JSON schemas as xgrammar 0.1.27 reads them correctly. Its rule for a string with minLength or
// maxLength admits any character but `"`, `\`, CR and LF, control characters included, so the
// output can be JSON no parser accepts; a `pattern` rule keeps the bound and excludes them. Such
// strings then hold no escapes: narrower than the schema allows, but always valid.

type Json = unknown;

function isRecord(value: Json): value is Record<string, Json> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function boundedString(node: Record<string, Json>): Record<string, Json> {
  const { minLength, maxLength, ...rest } = node;
  const min = typeof minLength === "number" ? minLength : 0;
  const max = typeof maxLength === "number" ? String(maxLength) : "";
  return { ...rest, pattern: `^[^\\x00-\\x1f"\\\\]{${min},${max}}$` };
}

/** The schema with every length-bounded string (without its own pattern or format) as a pattern. */
export function xgrammarJsonSchema(schema: Json): Json {
  if (Array.isArray(schema)) return schema.map(xgrammarJsonSchema);
  if (!isRecord(schema)) return schema;
  const node = Object.fromEntries(Object.entries(schema).map(([key, value]) => [key, xgrammarJsonSchema(value)]));
  const bounded = typeof node.minLength === "number" || typeof node.maxLength === "number";
  const isString =
    node.type === "string" || (Array.isArray(node.type) && node.type.length === 1 && node.type[0] === "string");
  return bounded && isString && node.pattern === undefined && node.format === undefined ? boundedString(node) : node;
}
