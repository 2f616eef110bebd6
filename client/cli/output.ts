/**
 * Output of the device command line: one JSON object per line for scripts (`--json`, or whenever
 * stdout is not a terminal), a readable line per record for a person at a terminal.
 */
export type Record_ = Record<string, unknown>;

export interface Output {
  readonly json: boolean;
  /** One record; `text` is how a person reads it. */
  record(value: Record_, text?: string): void;
  /** A heading or a remark for people; nothing in JSON mode. */
  say(line: string): void;
}

export function createOutput(json: boolean, write: (s: string) => void = (s) => void process.stdout.write(s)): Output {
  return {
    json,
    record(value, text) {
      write(json ? `${JSON.stringify(value)}\n` : `${text ?? plain(value)}\n`);
    },
    say(line) {
      if (!json) write(`${line}\n`);
    },
  };
}

/** Minor units as a decimal amount (350 → "3.50"). */
export function money(minor: number): string {
  const sign = minor < 0 ? "-" : "";
  const abs = Math.abs(minor);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, "0")}`;
}

function plain(value: Record_): string {
  return Object.entries(value)
    .map(([k, v]) => `${k}: ${typeof v === "object" && v !== null ? JSON.stringify(v) : String(v)}`)
    .join("  ");
}
