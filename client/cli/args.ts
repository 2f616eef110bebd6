/**
 * Options of the device command line: declared once per command, so parsing, `--help` and the
 * error for a mistyped flag all come from the same list.
 */
import { parseArgs } from "node:util";
import { ClientError } from "../errors.js";

export interface OptionSpec {
  type: "string" | "boolean";
  /** What it means, for `--help`. */
  help: string;
  /** Placeholder shown in the usage line (`--qty N`). */
  value?: string;
  required?: boolean;
  multiple?: boolean;
}

export type Options = Record<string, OptionSpec>;
export type Values = Record<string, string | boolean | string[] | undefined>;

/** Options every command takes. */
export const COMMON: Options = {
  data: { type: "string", value: "DIR", help: "the device's data folder (made by enroll)", required: true },
  json: { type: "boolean", help: "print JSON lines (the default when the output is not a terminal)" },
  help: { type: "boolean", help: "show this help" },
};

export const OFFLINE: Options = {
  offline: { type: "boolean", help: "do not connect: record or read locally only" },
};

/** Parses `args` against `options`; a mistake names the flag and how to get help. */
export function parse(command: string, args: string[], options: Options): Values {
  const all = { ...COMMON, ...options };
  const config = Object.fromEntries(
    Object.entries(all).map(([name, o]) => [name, { type: o.type, ...(o.multiple ? { multiple: true } : {}) }]),
  );
  let values: Values;
  try {
    values = parseArgs({ args, options: config, strict: true, allowPositionals: false }).values as Values;
  } catch (err) {
    const why = err instanceof Error ? err.message.replace(/\. To specify.*$/s, "") : String(err);
    throw new ClientError("invalid-input", `${why}; see: npm run device -- ${command} --help`);
  }
  if (values.help) return values;
  for (const [name, o] of Object.entries(all)) {
    if (o.required && (values[name] === undefined || values[name] === "")) {
      throw new ClientError("invalid-input", `--${name} is required; see: npm run device -- ${command} --help`);
    }
  }
  return values;
}

export function str(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === "string" && v !== "" ? v : undefined;
}

export function need(values: Values, name: string): string {
  const v = str(values, name);
  if (v === undefined) throw new ClientError("invalid-input", `--${name} is required`);
  return v;
}

/**
 * Relay addresses from `--relay`, repeated or comma-separated, each checked to be a ws(s) or
 * http(s) URL (a typo is named, not dialled forever).
 */
export function relayList(values: Values): string[] {
  const raw = values.relay;
  const given = Array.isArray(raw) ? raw : typeof raw === "string" ? [raw] : [];
  const out: string[] = [];
  for (const part of given.flatMap((g) => g.split(","))) {
    const url = part.trim();
    if (url === "") continue;
    let protocol: string;
    try {
      protocol = new URL(url).protocol;
    } catch {
      throw new ClientError("invalid-input", `--relay ${JSON.stringify(url)} is not a URL; expected e.g. ws://shop-server:8080/sync`);
    }
    if (!["ws:", "wss:", "http:", "https:"].includes(protocol)) throw new ClientError("invalid-input", `--relay ${url}: expected a ws://, wss://, http:// or https:// address`);
    if (out.includes(url)) throw new ClientError("invalid-input", `--relay ${url} is given twice`);
    out.push(url);
  }
  return out;
}

/** A safe integer flag; `fallback` when absent (required when there is none). */
export function int(values: Values, name: string, fallback?: number): number {
  const v = str(values, name);
  if (v === undefined) {
    if (fallback === undefined) throw new ClientError("invalid-input", `--${name} is required`);
    return fallback;
  }
  const n = Number(v);
  if (!/^-?\d+$/.test(v) || !Number.isSafeInteger(n)) throw new ClientError("invalid-input", `--${name} must be a whole number, got ${JSON.stringify(v)}`);
  return n;
}

export function usageLine(command: string, options: Options): string {
  const parts = Object.entries({ ...COMMON, ...options })
    .filter(([name]) => name !== "help" && name !== "json")
    .map(([name, o]) => {
      const flag = o.type === "boolean" ? `--${name}` : `--${name} ${o.value ?? "VALUE"}`;
      return o.required ? flag : `[${flag}]`;
    });
  return `npm run device -- ${command} ${parts.join(" ")}`;
}

export function optionHelp(options: Options): string {
  const rows = Object.entries({ ...COMMON, ...options }).map(([name, o]) => {
    const flag = o.type === "boolean" ? `--${name}` : `--${name} ${o.value ?? "VALUE"}`;
    return `  ${flag.padEnd(24)} ${o.help}${o.required ? " (required)" : ""}`;
  });
  return rows.join("\n");
}
