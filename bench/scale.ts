import type { Benchmark } from "./lib/context.js";
export const scaleBench: Benchmark = { name: "scale", issue: 0, async run() { return []; } };
