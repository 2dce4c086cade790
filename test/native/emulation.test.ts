// The CUDA emulation that the CUDA kernels are tested on: its own checks (barriers, shuffles and
// votes, atomics across concurrent blocks, per-block shared memory, wmma, graph capture, launch
// errors) in build/emu-selftest, a deadlocked kernel reported instead of hanging the suite, and a
// misaligned vector access reported as a GPU would fault on it.
import { describe, expect, test } from "bun:test";
import { resolve } from "node:path";

const selftest = resolve(import.meta.dir, "../../build/emu-selftest");

describe("CUDA emulation", () => {
  test("keeps the CUDA rules the kernels rely on", () => {
    const run = Bun.spawnSync([selftest]);
    const output = run.stdout.toString();
    expect(output).not.toContain("FAIL");
    expect(output).toMatch(/^ok \d+ checks$/m);
    expect(run.exitCode).toBe(0);
  });

  test("aborts with a message on a kernel whose threads wait at barriers the others never reach", () => {
    const run = Bun.spawnSync([selftest, "deadlock"]);
    expect(run.exitCode).not.toBe(0);
    expect(run.stderr.toString()).toContain("deadlock in block (0,0,0)");
    expect(run.stdout.toString()).not.toContain("returned");
  });

  test("aborts on a misaligned 16-byte access, which a GPU faults on", () => {
    const run = Bun.spawnSync([selftest, "misaligned"]);
    expect(run.exitCode).not.toBe(0);
    expect(run.stderr.toString()).toMatch(/misaligned 16-byte access to 0x[0-9a-f]+ at .*selftest\.cu:\d+/);
    expect(run.stdout.toString()).not.toContain("returned");
  });
});
