import type { Benchmark } from "./lib/context.js";
export const materializerBench: Benchmark = { name: "materializer", issue: 0, async run() { return []; } };
