// `vllm-ts bench`: the numbers users pick an engine by, measured on their own machine.
import { defineCommand } from "citty";

export default defineCommand({
  meta: {
    name: "bench",
    description: "Benchmark throughput, latency, a running server, continuous vs static batching, or kernels",
  },
  subCommands: {
    throughput: () => import("./bench/throughput.ts").then((m) => m.default),
    latency: () => import("./bench/latency.ts").then((m) => m.default),
    compare: () => import("./bench/compare.ts").then((m) => m.default),
    serve: () => import("./bench/serve.ts").then((m) => m.default),
    kernels: () => import("./bench/kernels.ts").then((m) => m.default),
  },
});
