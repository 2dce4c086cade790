// Every CPU variant this machine can run passes the native-op tests, not only the best one that
// the rest of the suite runs on: the variants compile different code paths (256- or 512-bit
// vectors, VNNI or not) from the same sources. Each variant is a `bun test` process of its own,
// since the native-op files open their backend as they load, with VLLM_TS_CPU_VARIANT set.
import { expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { resolve } from "node:path";
import { cpuVariants } from "#embedded-libraries";
import { hostCpuFlags } from "../../src/backend/cpu-variant.ts";

const root = resolve(import.meta.dir, "../..");
const NATIVE_TESTS = readdirSync(resolve(root, "test/native"))
  .filter((name) => name.endsWith(".test.ts") && name !== "emulation.test.ts")
  .map((name) => `test/native/${name}`);
const TIMEOUT_MS = 600_000;
const hostFlags = hostCpuFlags();

for (const variant of cpuVariants) {
  const lacking = variant.cpuFlags.filter((flag) => !hostFlags.has(flag));
  const skipped = lacking.length > 0 ? ` (skipped: this CPU lacks ${lacking.join(", ")})` : "";
  test.skipIf(lacking.length > 0)(
    `the native-op tests pass on ${variant.name}${skipped}`,
    async () => {
      const { VLLM_TS_LIBRARY: _, ...inherited } = process.env;
      const run = Bun.spawn([process.execPath, "test", "--timeout", "120000", ...NATIVE_TESTS], {
        cwd: root,
        env: { ...inherited, VLLM_TS_CPU_VARIANT: variant.name },
        stdout: "ignore",
        stderr: "pipe",
      });
      // bun test reports on stderr.
      const [report, code] = await Promise.all([new Response(run.stderr).text(), run.exited]);
      if (code !== 0) throw new Error(`bun test on ${variant.name} exited with ${code}:\n${report.slice(-4000)}`);
      expect(report).toMatch(/\n\s*0 fail\n/);
    },
    TIMEOUT_MS,
  );
}
