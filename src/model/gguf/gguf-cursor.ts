// Reads GGUF's little-endian scalars and length-prefixed strings from a mapped file, checking every
// read against the file's end first, so a truncated or lying file fails with the byte offset and
// what was being read instead of an out-of-range read or a huge allocation.
import { ModelLoadError } from "../errors.ts";

const utf8 = new TextDecoder("utf-8");

export class GgufCursor {
  private readonly view: DataView;
  position = 0;

  constructor(
    readonly file: string,
    readonly bytes: Uint8Array,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.bytes.byteLength - this.position;
  }

  fail(problem: string): never {
    throw new ModelLoadError(this.file, problem);
  }

  /** Refuses to read `count` bytes of `what` past the end of the file. */
  need(count: number, what: string): void {
    if (count > this.remaining) {
      this.fail(
        `truncated file: ${what} at byte ${this.position} needs ${count} bytes, only ${this.remaining} remain of ${this.bytes.byteLength}`,
      );
    }
  }

  private advance(count: number, what: string): number {
    this.need(count, what);
    const at = this.position;
    this.position += count;
    return at;
  }

  u8(what: string): number {
    return this.view.getUint8(this.advance(1, what));
  }
  i8(what: string): number {
    return this.view.getInt8(this.advance(1, what));
  }
  u16(what: string): number {
    return this.view.getUint16(this.advance(2, what), true);
  }
  i16(what: string): number {
    return this.view.getInt16(this.advance(2, what), true);
  }
  u32(what: string): number {
    return this.view.getUint32(this.advance(4, what), true);
  }
  i32(what: string): number {
    return this.view.getInt32(this.advance(4, what), true);
  }
  u64(what: string): bigint {
    return this.view.getBigUint64(this.advance(8, what), true);
  }
  i64(what: string): bigint {
    return this.view.getBigInt64(this.advance(8, what), true);
  }
  f32(what: string): number {
    return this.view.getFloat32(this.advance(4, what), true);
  }
  f64(what: string): number {
    return this.view.getFloat64(this.advance(8, what), true);
  }

  /** A u64 used as a count or size: it must fit in a safe integer and in what is left of the file. */
  count(what: string, bytesPerItem: number): number {
    const at = this.position;
    const value = this.u64(what);
    if (value > BigInt(Math.floor(this.remaining / Math.max(bytesPerItem, 1)))) {
      this.fail(
        `${what} at byte ${at} is ${value}, more than the ${this.remaining} bytes left in the file can hold (truncated or corrupt file?)`,
      );
    }
    return Number(value);
  }

  /** A u64 byte length, then that many bytes of UTF-8 (invalid sequences become U+FFFD, as in llama.cpp). */
  string(what: string): string {
    const length = this.count(`length of ${what}`, 1);
    const at = this.advance(length, what);
    return utf8.decode(this.bytes.subarray(at, at + length));
  }

  /** Moves to the next multiple of `alignment` (a power of two). */
  alignTo(alignment: number): void {
    this.position = Math.ceil(this.position / alignment) * alignment;
  }
}
