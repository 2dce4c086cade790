// A device buffer reused from call to call and grown (doubling) only when a call needs more, so
// per-step uploads and scratch cost no allocation (cudaMalloc/cudaFree synchronize the device).
import type { Address } from "./address.ts";
import type { Backend } from "./backend.ts";

export class GrowableBuffer {
  private address: Address | null = null;
  private capacity = 0;

  constructor(private readonly backend: Backend) {}

  /** At least `bytes` of device memory; the contents do not survive a growth. */
  reserve(bytes: number): Address {
    if (bytes > this.capacity) {
      this.free();
      this.capacity = Math.max(bytes, 2 * this.capacity);
      this.address = this.backend.malloc(this.capacity);
    }
    return this.address!;
  }

  free(): void {
    if (this.address !== null) this.backend.free(this.address);
    this.address = null;
    this.capacity = 0;
  }
}
