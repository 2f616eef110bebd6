/**
 * The one place the materializer changes a server-owned document: every change is followed, in
 * the same tick, by the service's signature over the result (shared/statement.ts says what is
 * signed and why).
 */
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import type { DocHandle } from "@automerge/automerge-repo";
import { canonicalJson, readStatement, signCanonical, STATEMENT_FIELD, verifyCanonical, type Statement } from "../../shared/statement.js";

export class StatementSigner {
  readonly #privateKey: KeyObject;
  readonly #publicKey: KeyObject;
  /** Document id → canonical content last signed, so an unchanged document is not signed again. */
  readonly #signed = new Map<string, string>();

  constructor(privateKeyPem: string) {
    this.#privateKey = createPrivateKey(privateKeyPem);
    this.#publicKey = createPublicKey(this.#privateKey);
  }

  /**
   * Applies `fn` and signs the outcome with the next version. A document whose content did not
   * change and whose statement is valid gets no new version (a restart must not rewrite every
   * verdict document); one written before signatures existed is signed here the first time.
   *
   * The content is read from the document after the change, not from the proxy inside it: on
   * the proxy the serialization cost ~25x more (680 ms for a status of 10,000 items). So the
   * statement is a second change, made in the same tick: the repo syncs both together, and a
   * peer that somehow carried the first alone would find it unsigned and be refused.
   */
  change<T>(handle: DocHandle<T>, fn?: (d: T) => void): void {
    if (fn) handle.change(fn);
    const documentId = handle.documentId;
    const doc = handle.doc();
    const canonical = canonicalJson(doc, STATEMENT_FIELD);
    if (this.#signed.get(documentId) === canonical) return;
    const current = readStatement(doc);
    if (typeof current === "object" && verifyCanonical(this.#publicKey, documentId, current, canonical)) {
      this.#signed.set(documentId, canonical);
      return;
    }
    const version = (typeof current === "object" ? current.version : 0) + 1;
    const statement: Statement = { version, signature: signCanonical(this.#privateKey, documentId, version, canonical) };
    handle.change((d) => {
      (d as Record<string, unknown>)[STATEMENT_FIELD] = statement;
    });
    this.#signed.set(documentId, canonical);
  }
}
