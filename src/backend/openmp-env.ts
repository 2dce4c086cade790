// OpenMP reads its settings from the C environment once, when the CPU library is loaded, and
// Bun's process.env does not write through to it, so they are set with libc's setenv.
//
// Waiting: after a parallel region libgomp's workers spin GOMP_SPINCOUNT times (a few tens of µs
// here) before they sleep on a futex. The ops of a decode step follow each other within
// microseconds (one graph launch, or the JS between eager ops), so the workers are awake for the
// next op instead of paying a futex wake-up, which costs more than a small op itself (single-stream
// decode of a 135M model: ~1.6x faster than sleeping at once). Between steps they go to sleep and
// leave the cores to Bun's own threads. On a machine shared with other busy processes, spinning
// threads burn slices the preempted ones need: OMP_WAIT_POLICY=passive is the setting there.
import { dlopen, FFIType } from "bun:ffi";

/** Iterations of libgomp's spin loop before a waiting thread sleeps. */
const SPIN_COUNT = "3000";

let applied = false;

export function applyOpenMpDefaults(): void {
  if (applied || process.platform !== "linux") return;
  applied = true;
  // A user's own choice wins.
  if (process.env.OMP_WAIT_POLICY !== undefined || process.env.GOMP_SPINCOUNT !== undefined) return;
  const libc = dlopen("libc.so.6", {
    setenv: { args: [FFIType.cstring, FFIType.cstring, FFIType.i32], returns: FFIType.i32 },
  });
  const cString = (s: string) => Buffer.from(`${s}\0`);
  libc.symbols.setenv(cString("GOMP_SPINCOUNT"), cString(SPIN_COUNT), 0);
  libc.close();
}
