/**
 * Decoding and checking of incoming frames, before anything else looks at them. Pure functions:
 * a frame is untrusted bytes in, a checked message or the reason it is refused out.
 */
import { decode as cborDecode } from "cbor-x";
import { next as A } from "@automerge/automerge";
import { isValidDocumentId, type DocumentId, type Message, type PeerId, type PeerMetadata, type StorageId } from "@automerge/automerge-repo";

export type DecodedFrame = Record<string, unknown> & { type: string };

/** What a checked message tells about its document. */
export interface Checked {
  message: Message & { documentId?: DocumentId };
  documentId: DocumentId;
  /** Sync/request only. */
  heads: number;
  changes: number;
  changeBytes: number;
}

const KNOWN_TYPES = new Set(["join", "sync", "request", "ephemeral", "doc-unavailable", "remote-subscription-change", "remote-heads-changed"]);

/** The message type as a metrics label: unknown types share one label so a peer cannot mint series. */
export function typeLabel(type: string): string {
  return KNOWN_TYPES.has(type) ? type : "other";
}

/** Returns the decoded message object, or the reason it is not one. */
export function decodeFrame(bytes: Uint8Array): DecodedFrame | string {
  // Every repo message is a CBOR map (major type 5); refusing anything else first means a
  // hostile array or string header never reaches the decoder.
  const first = bytes[0];
  if (first === undefined || first >> 5 !== 5) return "not a CBOR map";
  let value: unknown;
  try {
    value = cborDecode(bytes);
  } catch (err) {
    return `invalid CBOR: ${err instanceof Error ? err.message.slice(0, 60) : "undecodable"}`;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    return "message is not a map";
  }
  const msg = value as Record<string, unknown>;
  if (typeof msg.type !== "string") return "message without a type";
  return msg as DecodedFrame;
}

/** Validates a document message's fields and, for sync messages, the Automerge payload. */
export function checkDocMessage(msg: DecodedFrame, relayPeerId: PeerId | undefined): Checked | string {
  const { type, documentId, data } = msg;
  if (type !== "sync" && type !== "request" && type !== "ephemeral" && type !== "doc-unavailable") {
    return `unknown message type ${JSON.stringify(type.slice(0, 40))}`;
  }
  if (msg.targetId !== relayPeerId) return "targetId is not the relay";
  if (typeof documentId !== "string" || !isValidDocumentId(documentId)) return "invalid documentId";
  const checked: Checked = {
    message: msg as unknown as Message & { documentId: DocumentId },
    documentId: documentId as DocumentId,
    heads: 0,
    changes: 0,
    changeBytes: 0,
  };
  if (type === "doc-unavailable") return checked;
  if (!(data instanceof Uint8Array) || data.byteLength === 0) return "message without data";
  if (type === "ephemeral") {
    if (typeof msg.count !== "number" || typeof msg.sessionId !== "string") return "ephemeral message without count or sessionId";
    return checked;
  }
  try {
    const sync = A.decodeSyncMessage(data as A.SyncMessage);
    checked.heads = sync.heads.length;
    checked.changes = sync.changes.length;
    checked.changeBytes = sync.changes.reduce((n, c) => n + c.byteLength, 0);
  } catch (err) {
    return `broken sync message: ${err instanceof Error ? err.message.slice(0, 60) : "undecodable"}`;
  }
  return checked;
}

/** Only the metadata fields the Repo uses, each checked; anything else a peer sends is dropped. */
export function sanitizeMetadata(value: unknown): PeerMetadata {
  if (typeof value !== "object" || value === null) return {};
  const v = value as Record<string, unknown>;
  const out: PeerMetadata = {};
  if (typeof v.storageId === "string" && v.storageId.length <= 100) out.storageId = v.storageId as StorageId;
  if (typeof v.isEphemeral === "boolean") out.isEphemeral = v.isEphemeral;
  return out;
}

/** The refusal label for a protocol violation ws reported on a socket. */
export function wsErrorReason(code: string | undefined): string {
  switch (code) {
    case "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH":
      return "frame-too-big";
    case "WS_ERR_TOO_MANY_BUFFERED_PARTS":
      return "too-many-fragments";
    default:
      return "protocol-error";
  }
}
