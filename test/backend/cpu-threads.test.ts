// The CPU library's threads: by default one per physical core (hyper-threads of a core share its
// memory bandwidth), and each worker pinned to a core of its own, away from the first core, which
// the engine's thread keeps.
import { afterAll, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { Backend } from "../../src/backend/backend.ts";

/** The CPUs of a cpulist such as "0-3,8". */
function cpusOf(list: string): number[] {
  return list
    .trim()
    .split(",")
    .flatMap((range) => {
      const [first, last = first] = range.split("-").map(Number);
      return Array.from({ length: last! - first! + 1 }, (_, i) => first! + i);
    });
}

function allowedCpus(statusFile: string): number[] {
  const line = /^Cpus_allowed_list:\s*(.*)$/m.exec(readFileSync(statusFile, "utf8"));
  return cpusOf(line![1]!);
}

/** The lowest allowed CPU of each physical core (its thread siblings). */
function oneCpuPerCore(): number[] {
  const cores = new Map<number, number>();
  for (const cpu of allowedCpus("/proc/self/status")) {
    const siblings = `/sys/devices/system/cpu/cpu${cpu}/topology/thread_siblings_list`;
    const core = cpusOf(readFileSync(siblings, "utf8"))[0]!;
    if (!cores.has(core)) cores.set(core, cpu);
  }
  return [...cores.values()].sort((a, b) => a - b);
}

const backend = await Backend.open({ device: "cpu" });
afterAll(() => backend.close());

test("the default thread count is the number of physical cores", () => {
  expect(backend.deviceName).toEndWith(`(${oneCpuPerCore().length} threads)`);
});

test("each worker is pinned to one core other than the first", () => {
  const cores = oneCpuPerCore();
  if (cores.length < 2) {
    console.log("one core: no workers to pin");
    return;
  }
  const pinned = readdirSync("/proc/self/task")
    .map((task) => allowedCpus(`/proc/self/task/${task}/status`))
    .filter((cpus) => cpus.length === 1)
    .map((cpus) => cpus[0]!);
  // Bun's own threads keep the process's mask; only the library pins, a worker on every other core
  // (more on earlier backends of this process that asked for more threads than cores).
  for (const core of cores.slice(1)) expect(pinned).toContain(core);
  for (const cpu of pinned) expect(cores).toContain(cpu);
});
