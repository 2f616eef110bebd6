/**
 * The journal checkpoints a device keeps: each signed checkpoint the status document showed,
 * so the device holds a witness of the server's journal head even after the status document
 * moves on (or a restored database publishes an older one). Bounded: the latest ones matter.
 */
import { parseCheckpoint, type Checkpoint } from "../shared/checkpoint.js";

export const MAX_KEPT_CHECKPOINTS = 64;

function own(raw: unknown, key: string): unknown {
  if (typeof raw !== "object" || raw === null) return undefined;
  const desc = Object.getOwnPropertyDescriptor(raw, key);
  return desc && "value" in desc ? desc.value : undefined;
}

/** Kept checkpoints read back from local storage; anything malformed is dropped. */
export function readKeptCheckpoints(raw: unknown): Checkpoint[] {
  if (!Array.isArray(raw)) return [];
  return raw.map(parseCheckpoint).filter((c): c is Checkpoint => typeof c !== "string").slice(-MAX_KEPT_CHECKPOINTS);
}

/** `kept` plus the status document's checkpoint when it is new; the same array when nothing changed. */
export function keepCheckpoint(kept: readonly Checkpoint[], statusDoc: unknown): Checkpoint[] {
  const raw = own(statusDoc, "checkpoint");
  if (raw === undefined) return kept as Checkpoint[];
  const cp = parseCheckpoint(raw);
  if (typeof cp === "string" || kept.some((k) => k.sig === cp.sig)) return kept as Checkpoint[];
  return [...kept, cp].slice(-MAX_KEPT_CHECKPOINTS);
}
