/** The stdout table: one line per metric, ours beside its baseline and the ratio. */
import type { Row } from "./report.js";
import type { Spread } from "./stats.js";

function num(v: number): string {
  if (!Number.isFinite(v)) return "n/a";
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toFixed(3);
}

export function cell(s: Spread | undefined): string {
  if (!s) return "—";
  if (s.values.length <= 1 || s.min === s.max) return num(s.median);
  return `${num(s.median)} (${num(s.min)}–${num(s.max)})`;
}

export function markdownTable(rows: readonly Row[]): string {
  const lines = [
    "| benchmark | metric | size | unit | ours (median, min–max) | baseline | baseline value | ours/baseline |",
    "|---|---|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    const ratio = r.ratio === undefined ? "—" : `${num(r.ratio)}x${r.better === "higher" ? " (higher is better)" : ""}`;
    lines.push(`| ${r.bench} | ${r.metric} | ${r.size ?? ""} | ${r.unit} | ${cell(r.ours)} | ${r.baselineName ?? "—"} | ${cell(r.baseline)} | ${ratio} |`);
  }
  return lines.join("\n");
}
