/**
 * Checks that stored bytes are whole Automerge chunks, without loading them into a document.
 * Automerge's `loadIncremental` loads an empty buffer as an empty document, and a damaged chunk
 * among good ones makes it throw for the whole document; so storage looks at each file first.
 *
 * A chunk (automerge binary format) is: magic 85 6f 4a 83, a 4-byte checksum (the first 4 bytes
 * of the SHA-256 of everything after it), a type byte, a LEB128 length, then that many bytes. A
 * file holds one or more chunks back to back (an incremental save is a run of change chunks).
 */
import { createHash } from "node:crypto";

const MAGIC = [0x85, 0x6f, 0x4a, 0x83] as const;
/** Document, change, compressed change. */
const KNOWN_TYPES = new Set([0, 1, 2]);

/** Why `data` is not a run of whole Automerge chunks, or null when it is. */
export function chunkProblem(data: Uint8Array): string | null {
  if (data.byteLength === 0) return "empty (0 bytes)";
  let offset = 0;
  let index = 0;
  while (offset < data.byteLength) {
    const at = `chunk ${index} at byte ${offset}`;
    if (data.byteLength - offset < 10) return `${at}: truncated header`;
    for (let i = 0; i < MAGIC.length; i++) {
      if (data[offset + i] !== MAGIC[i]) return `${at}: not an Automerge chunk (bad magic bytes)`;
    }
    const type = data[offset + 8]!;
    if (!KNOWN_TYPES.has(type)) return `${at}: unknown chunk type ${type}`;
    const length = readLeb128(data, offset + 9);
    if (!length) return `${at}: unreadable length`;
    const end = length.next + length.value;
    if (end > data.byteLength) return `${at}: truncated (${data.byteLength - length.next} of ${length.value} bytes)`;
    const digest = createHash("sha256").update(data.subarray(offset + 8, end)).digest();
    for (let i = 0; i < 4; i++) {
      if (digest[i] !== data[offset + 4 + i]) return `${at}: checksum mismatch`;
    }
    offset = end;
    index += 1;
  }
  return null;
}

/** Unsigned LEB128; null when it runs past the data or beyond 2^53. */
function readLeb128(data: Uint8Array, start: number): { value: number; next: number } | null {
  let value = 0;
  let scale = 1;
  for (let i = start; i < data.byteLength && i < start + 8; i++) {
    const byte = data[i]!;
    value += (byte & 0x7f) * scale;
    if ((byte & 0x80) === 0) return { value, next: i + 1 };
    scale *= 128;
  }
  return null;
}
