// Device addresses as the native library hands them out: bun:ffi's Pointer (a number the type
// system keeps apart from plain numbers), so an op's pointer argument cannot be given a size,
// and the arithmetic that derives one address from another is spelled out.
import type { Pointer } from "bun:ffi";

/** A device address (a host one for host-side arguments). */
export type Address = Pointer;

/** The address `bytes` past `base` (a view into one allocation). */
export function offsetAddress(base: Address, bytes: number): Address {
  return (base + bytes) as Address;
}

/** An address a native call wrote into a 64-bit out-parameter. */
export function addressFrom(value: bigint): Address {
  return Number(value) as Address;
}
