/** What a benchmark hands back: rows of one metric, ours beside its baseline, over repetitions. */
import { spread, type Spread } from "./stats.js";

export interface Row {
  bench: string;
  metric: string;
  unit: string;
  /** Which way is good, so a reader knows what a ratio above 1 means. */
  better: "lower" | "higher";
  ours: Spread;
  baselineName?: string;
  baseline?: Spread;
  /** ours / baseline of the medians. */
  ratio?: number;
  /** ours / baseline per repetition (paired in the same repetition). */
  ratioSpread?: Spread;
  size?: string;
  note?: string;
}

export interface Sizes {
  relayDocEntries: number;
  relayClients: number;
  relayExchangeSeconds: number;
  reconnectEntries: number;
  materializerEntries: number;
  latencyDevices: number;
  latencySeconds: number;
  scaleEntries: number;
  scaleDevices: number;
  concurrentDevices: number;
  concurrentSeconds: number;
  /** Entries in the team whose `/api/sync-status` the status bench times. */
  statusEntries: number;
  /** Most devices the relay capacity steps go to (doubling from 10). */
  capacityDevices: number;
}

/** Collects values per repetition, then turns them into rows. */
export class Collector {
  private readonly metrics = new Map<string, { unit: string; better: "lower" | "higher"; ours: number[]; base: number[]; baselineName?: string; size?: string; note?: string }>();

  constructor(readonly bench: string) {}

  define(metric: string, unit: string, better: "lower" | "higher", extra: { baselineName?: string; size?: string; note?: string } = {}): void {
    if (!this.metrics.has(metric)) this.metrics.set(metric, { unit, better, ours: [], base: [], ...extra });
  }

  ours(metric: string, value: number): void {
    this.get(metric).ours.push(value);
  }

  baseline(metric: string, value: number): void {
    this.get(metric).base.push(value);
  }

  note(metric: string, note: string): void {
    this.get(metric).note = note;
  }

  private get(metric: string) {
    const m = this.metrics.get(metric);
    if (!m) throw new Error(`metric ${metric} was not defined`);
    return m;
  }

  rows(): Row[] {
    const out: Row[] = [];
    for (const [metric, m] of this.metrics) {
      const ours = spread(m.ours);
      const row: Row = { bench: this.bench, metric, unit: m.unit, better: m.better, ours };
      if (m.size) row.size = m.size;
      if (m.note) row.note = m.note;
      if (m.base.length > 0) {
        row.baseline = spread(m.base);
        row.baselineName = m.baselineName ?? "baseline";
        row.ratio = ours.median / row.baseline.median;
        const pairs = Math.min(m.ours.length, m.base.length);
        row.ratioSpread = spread(Array.from({ length: pairs }, (_, i) => m.ours[i]! / m.base[i]!));
      }
      out.push(row);
    }
    return out;
  }
}
