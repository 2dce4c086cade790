// Typed readers of a config.json's fields, each failure naming the file and the field.
import { ModelLoadError } from "./errors.ts";

export type Json = Record<string, unknown>;

/**
 * Field readers bound to one file, so every message names the file and the field; `scope`
 * prefixes fields of a nested object ("rope_scaling.").
 */
export function fieldReader(json: Json, file: string, scope = "") {
  const fail = (field: string, expected: string): never => {
    throw new ModelLoadError(file, `"${scope}${field}" must be ${expected}, got ${JSON.stringify(json[field])}`);
  };
  const present = (field: string) => json[field] !== undefined && json[field] !== null;
  const positiveInt = (field: string, fallback?: number): number => {
    if (!present(field)) {
      if (fallback !== undefined) return fallback;
      throw new ModelLoadError(file, `missing required field "${scope}${field}"`);
    }
    const value = json[field];
    return Number.isInteger(value) && (value as number) > 0 ? (value as number) : fail(field, "a positive integer");
  };
  const positiveNumber = (field: string, fallback?: number): number => {
    if (!present(field)) {
      if (fallback !== undefined) return fallback;
      throw new ModelLoadError(file, `missing required field "${scope}${field}"`);
    }
    const value = json[field];
    return typeof value === "number" && value > 0 && Number.isFinite(value) ? value : fail(field, "a positive number");
  };
  const boolean = (field: string, fallback: boolean): boolean => {
    if (!present(field)) return fallback;
    const value = json[field];
    return typeof value === "boolean" ? value : fail(field, "true or false");
  };
  const tokenIds = (field: string): number[] => {
    if (!present(field)) return [];
    const value = json[field];
    const ids = Array.isArray(value) ? value : [value];
    const valid = ids.every((id) => Number.isInteger(id) && id >= 0);
    return valid ? (ids as number[]) : fail(field, "a token id or a list of token ids");
  };
  /** A positive number, or null when absent or null. */
  const optionalPositiveNumber = (field: string): number | null => (present(field) ? positiveNumber(field) : null);
  const string = (field: string, fallback: string): string => {
    if (!present(field)) return fallback;
    const value = json[field];
    return typeof value === "string" ? value : fail(field, "a string");
  };
  return { present, positiveInt, positiveNumber, optionalPositiveNumber, boolean, tokenIds, string, fail };
}
