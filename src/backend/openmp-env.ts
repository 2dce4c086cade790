// OpenMP reads its settings from the C environment once, when the CPU library is loaded, and
// Bun's process.env does not write through to it, so they are set with libc's setenv.
// Passive waiting matters here: spinning OpenMP workers compete with Bun's own threads for the
// cores between ops, and every op of a decode step then waits a scheduler slice (~8 ms) for
// them; sleeping workers wake in microseconds.
import { dlopen, FFIType } from "bun:ffi";

let applied = false;

export function applyOpenMpDefaults(): void {
  if (applied || process.platform !== "linux") return;
  applied = true;
  const libc = dlopen("libc.so.6", {
    setenv: { args: [FFIType.cstring, FFIType.cstring, FFIType.i32], returns: FFIType.i32 },
  });
  const cString = (s: string) => Buffer.from(`${s}\0`);
  // overwrite = 0: a user's own OMP_WAIT_POLICY wins.
  libc.symbols.setenv(cString("OMP_WAIT_POLICY"), cString("PASSIVE"), 0);
  libc.close();
}
