import type { Benchmark } from "./lib/context.js";
export const reconnectBench: Benchmark = { name: "reconnect", issue: 0, async run() { return []; } };
