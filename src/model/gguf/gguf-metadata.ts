// Typed reads of a GGUF file's metadata, each failure naming the file, the key and what was there,
// so a file that lacks a hyper-parameter or carries one of the wrong kind fails at load.
import { ModelLoadError } from "../errors.ts";
import type { GgufFile } from "./gguf-file.ts";
import type { GgufValue } from "./gguf-values.ts";

function describe(value: GgufValue): string {
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (Array.isArray(value) || ArrayBuffer.isView(value)) return `an array of ${value.length}`;
  return String(value);
}

export class GgufMetadata {
  constructor(private readonly gguf: GgufFile) {}

  get file(): string {
    return this.gguf.file;
  }

  has(key: string): boolean {
    return this.gguf.metadata.has(key);
  }

  fail(key: string, problem: string): never {
    throw new ModelLoadError(this.gguf.file, `metadata "${key}" ${problem}`);
  }

  private get(key: string): GgufValue {
    const value = this.gguf.metadata.get(key);
    if (value === undefined) this.fail(key, "is missing");
    return value;
  }

  string(key: string): string {
    const value = this.get(key);
    return typeof value === "string" ? value : this.fail(key, `must be a string, got ${describe(value)}`);
  }

  optionalString(key: string): string | undefined {
    return this.has(key) ? this.string(key) : undefined;
  }

  /** An integer of any width, as a number. */
  integer(key: string): number {
    const value = this.get(key);
    const number = typeof value === "bigint" ? Number(value) : value;
    if (typeof number !== "number" || !Number.isSafeInteger(number)) {
      this.fail(key, `must be an integer, got ${describe(value)}`);
    }
    return number;
  }

  optionalInteger(key: string): number | undefined {
    return this.has(key) ? this.integer(key) : undefined;
  }

  positiveInteger(key: string, fallback?: number): number {
    if (!this.has(key) && fallback !== undefined) return fallback;
    const value = this.integer(key);
    return value > 0 ? value : this.fail(key, `must be a positive integer, got ${value}`);
  }

  positiveNumber(key: string, fallback?: number): number {
    if (!this.has(key) && fallback !== undefined) return fallback;
    const value = this.get(key);
    const number = typeof value === "bigint" ? Number(value) : value;
    if (typeof number !== "number" || !(number > 0) || !Number.isFinite(number)) {
      this.fail(key, `must be a positive number, got ${describe(value)}`);
    }
    return number;
  }

  boolean(key: string, fallback: boolean): boolean {
    if (!this.has(key)) return fallback;
    const value = this.get(key);
    return typeof value === "boolean" ? value : this.fail(key, `must be true or false, got ${describe(value)}`);
  }

  stringArray(key: string): string[] {
    const value = this.get(key);
    if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) {
      this.fail(key, `must be an array of strings, got ${describe(value)}`);
    }
    return value as string[];
  }

  /** A numeric array of `length` entries (as per-token scores and types must be). */
  numberArray(key: string, length: number): ArrayLike<number> {
    const value = this.get(key);
    if (!ArrayBuffer.isView(value) || value instanceof BigInt64Array || value instanceof BigUint64Array) {
      return this.fail(key, `must be an array of numbers of 32 bits or fewer, got ${describe(value)}`);
    }
    if (value.length !== length) this.fail(key, `has ${value.length} entries, expected ${length} (one per token)`);
    return value;
  }
}
