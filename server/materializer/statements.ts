/**
 * The one place the materializer changes a server-owned document: the change and the service's
 * signature over the result go in one Automerge change, so no state a peer can carry is ever
 * unsigned (shared/statement.ts says what is signed and why).
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
   */
  change<T>(handle: DocHandle<T>, fn: (d: T) => void = () => undefined): void {
    const documentId = handle.documentId;
    handle.change((d) => {
      fn(d);
      const canonical = canonicalJson(d, STATEMENT_FIELD);
      const current = readStatement(d);
      const valid = typeof current === "object" && (this.#signed.get(documentId) === canonical || verifyCanonical(this.#publicKey, documentId, current, canonical));
      if (valid) {
        this.#signed.set(documentId, canonical);
        return;
      }
      const version = (typeof current === "object" ? current.version : 0) + 1;
      const statement: Statement = { version, signature: signCanonical(this.#privateKey, documentId, version, canonical) };
      (d as Record<string, unknown>)[STATEMENT_FIELD] = statement;
      this.#signed.set(documentId, canonical);
    });
  }
}
