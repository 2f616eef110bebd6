/**
 * Finding a message's document registration, and registering a new document: a device's first
 * sync of a document it created (with heads, from a role that may bring documents) registers it
 * to the device's team, within the team's document bound. The first registration wins.
 */
import type { Claims } from "../../shared/auth/claims.js";
import { mayRegister, type DocRecord } from "./access.js";
import type { Checked } from "./frames.js";
import type { DocumentRegistry } from "./registry.js";
import type { TeamDocumentQuota } from "./team-quota.js";

export interface Registrant {
  claims: Claims;
  /** User and device, recorded as the document's owner. */
  identity: string;
}

export type Resolution =
  | { record: DocRecord | null; registered: boolean }
  | { refused: string };

export async function resolveRegistration(
  deps: { registry: DocumentRegistry; quota?: TeamDocumentQuota },
  who: Registrant,
  checked: Checked,
): Promise<Resolution> {
  const documentId = checked.documentId as string;
  const { team } = who.claims;
  const found = await deps.registry.lookup(documentId);
  if (found) return { record: found, registered: false };
  if (checked.message.type !== "sync" || checked.heads === 0 || !mayRegister(who.claims)) return { record: null, registered: false };
  if (deps.quota && !(await deps.quota.reserve(team))) {
    return { refused: `team ${team} has reached its limit of ${deps.quota.max} documents; ${documentId} refused` };
  }
  const record: DocRecord = { _id: documentId, team, kind: "ledger-segment", readOnly: false, owner: who.identity, createdAt: new Date() };
  // register() answers with our record when it was inserted, else with the one already there.
  const registered = await deps.registry.register(record);
  if (registered !== record) deps.quota?.release(team);
  return { record: registered, registered: registered === record };
}
