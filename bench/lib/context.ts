/** What every benchmark gets from the runner. */
import type { BenchDatabase } from "./database.js";
import type { Row, Sizes } from "./report.js";

export interface BenchContext {
  db: BenchDatabase;
  sizes: Sizes;
  /** Repetitions of each measurement (ours and baseline alternate inside one repetition). */
  reps: number;
  /** Memoized expensive inputs (fixtures), shared by the benchmarks of one run. */
  memo<T>(key: string, make: () => Promise<T> | T): Promise<T>;
}

export interface Benchmark {
  name: string;
  /** The issue whose bullet it answers. */
  issue: number;
  run(ctx: BenchContext): Promise<Row[]>;
}

/** A benchmark that failed part-way: the rows measured before the failure still count. */
export class PartialResult extends Error {
  constructor(
    readonly rows: Row[],
    message: string,
  ) {
    super(message);
  }
}
