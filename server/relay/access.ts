/**
 * Who may read and change which document: a pure function of the verified claims and the
 * document's registration, so it is the same on every message and easy to test.
 */
import type { DocKind } from "../../shared/docs.js";
import type { Claims } from "../../shared/auth/claims.js";

export interface DocRecord {
  /** Automerge document id (no `automerge:` prefix). */
  _id: string;
  team: string;
  kind: DocKind;
  /** Server-owned: devices sync it but never change it. */
  readOnly: boolean;
  /** For ledger segments: the identity (user/device) that registered it, its only writer. */
  owner?: string;
  createdAt: Date;
}

export function canRead(claims: Claims, doc: DocRecord): boolean {
  return claims.role === "service" || doc.team === claims.team;
}

export function canWrite(claims: Claims, doc: DocRecord): boolean {
  if (claims.role === "service") return true;
  if (doc.team !== claims.team || claims.role === "auditor") return false;
  // Root, status and verdicts are the server's alone, admins included: the materializer follows
  // the root's links with every team's authority, so a root an admin could edit would let that
  // admin point it at another team's documents. Admins change settings over HTTP instead.
  if (doc.readOnly) return false;
  // A ledger segment has one writing device, but any member of the team may carry its changes:
  // two tablets that synced peer to peer each forward the other's segment to the relay, and the
  // first to arrive is recorded as `owner`. Automerge changes are not signed, so the relay cannot
  // tell a forwarded change from a new one; the team is the boundary it can enforce.
  return true;
}

/** A device may bring a new document (a ledger segment) into its team; services name a team first. */
export function mayRegister(claims: Claims): boolean {
  return claims.role === "member" || claims.role === "admin";
}
