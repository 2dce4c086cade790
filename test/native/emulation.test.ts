// The CUDA emulation that the CUDA kernels are tested on: its own checks (barriers, shuffles and
// votes, atomics across concurrent blocks, per-block shared memory, wmma, graph capture, launch
// errors) in build/emu-selftest, and a deadlocked kernel reported instead of hanging the suite.
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
});
