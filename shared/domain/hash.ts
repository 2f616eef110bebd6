// Deterministic serialization and hashing of parsed (hence JSON-safe) values, used for tamper
// detection and the journal hash chain. Runs in browsers too, hence @noble/hashes.
import { sha256 } from "@noble/hashes/sha256";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils";

export type Json = null | boolean | number | string | readonly Json[] | { readonly [key: string]: Json | undefined };

/**
 * JSON with object keys sorted by code unit and no whitespace; `undefined` properties are
 * skipped as JSON.stringify does. Throws on values JSON cannot represent (non-finite numbers,
 * functions, cycles) rather than hashing something ambiguous; callers pass validated values.
 */
export function canonicalJson(value: unknown): string {
  return write(value, new Set());
}

function write(value: unknown, seen: Set<object>): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "string":
      return JSON.stringify(value);
    case "number":
      if (!Number.isFinite(value)) throw new TypeError("canonicalJson: non-finite number");
      return JSON.stringify(value);
    case "object":
      break;
    default:
      throw new TypeError(`canonicalJson: cannot serialize ${typeof value}`);
  }
  const obj = value as object;
  if (seen.has(obj)) throw new TypeError("canonicalJson: cycle");
  seen.add(obj);
  let out: string;
  if (Array.isArray(obj)) {
    out = `[${obj.map((v: unknown) => (v === undefined ? "null" : write(v, seen))).join(",")}]`;
  } else {
    const rec = obj as Record<string, unknown>;
    const parts: string[] = [];
    for (const key of Object.keys(rec).sort()) {
      const v = rec[key];
      if (v === undefined) continue;
      parts.push(`${JSON.stringify(key)}:${write(v, seen)}`);
    }
    out = `{${parts.join(",")}}`;
  }
  seen.delete(obj);
  return out;
}

export function sha256Hex(text: string): string {
  return bytesToHex(sha256(utf8ToBytes(text)));
}

/** Hex SHA-256 of the canonical JSON of a parsed entry. */
export function entryHash(entry: unknown): string {
  return sha256Hex(canonicalJson(entry));
}
