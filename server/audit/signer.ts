/**
 * Signing and checking journal checkpoints with the service's ES256 key (the JWT key pair,
 * server/auth/keys.ts): the one secret that someone with write access to the database alone
 * does not hold, which is what makes a checkpoint a witness against them.
 */
import { createHash, createPrivateKey, createPublicKey, sign, verify } from "node:crypto";
import { checkpointMessage, type Checkpoint, type CheckpointBody } from "../../shared/checkpoint.js";

export interface CheckpointSigner {
  keyId: string;
  sign(body: Omit<CheckpointBody, "keyId">): Checkpoint;
}

/** Hex SHA-256 of the DER SubjectPublicKeyInfo: names the key a checkpoint was signed with. */
export function keyIdOf(publicKeyPem: string): string {
  const der = createPublicKey(publicKeyPem).export({ type: "spki", format: "der" });
  return createHash("sha256").update(der).digest("hex");
}

export function createCheckpointSigner(keys: { privateKeyPem: string; publicKeyPem: string }): CheckpointSigner {
  const key = createPrivateKey(keys.privateKeyPem);
  const keyId = keyIdOf(keys.publicKeyPem);
  return {
    keyId,
    sign(body) {
      const full: CheckpointBody = { team: body.team, seq: body.seq, head: body.head, at: body.at, keyId };
      // IEEE P1363 (r ‖ s), the JWS form: any JOSE library or a few lines of Python check it.
      const sig = sign("sha256", Buffer.from(checkpointMessage(full), "utf8"), { key, dsaEncoding: "ieee-p1363" });
      return { ...full, sig: sig.toString("base64url") };
    },
  };
}

/** Whether `cp` carries a valid signature by `publicKeyPem` (and names that key). */
export function checkpointSignatureValid(cp: Checkpoint, publicKeyPem: string): boolean {
  if (cp.keyId !== keyIdOf(publicKeyPem)) return false;
  try {
    return verify(
      "sha256",
      Buffer.from(checkpointMessage(cp), "utf8"),
      { key: createPublicKey(publicKeyPem), dsaEncoding: "ieee-p1363" },
      Buffer.from(cp.sig, "base64url"),
    );
  } catch {
    return false;
  }
}
