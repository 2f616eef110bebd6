/** Reading what verify-journal checks against: the service's public key and checkpoint files. */
import { readFile } from "node:fs/promises";
import { createPrivateKey, createPublicKey } from "node:crypto";
import path from "node:path";
import { parseCheckpoint, type Checkpoint } from "../../shared/checkpoint.js";
import type { Config } from "../config.js";

/**
 * The service's public key: `--public-key FILE`, else JWT_PUBLIC_KEY, else the one derived from
 * JWT_PRIVATE_KEY, else `$DATA_DIR/keys/jwt-es256.pub`. Never generates one (an auditor's tool
 * must not invent the key it checks against); undefined when none is found.
 */
export async function loadPublicKey(config: Config, file: string | undefined): Promise<string | undefined> {
  if (file) return readFile(file, "utf8");
  if (config.jwt.publicKeyPem) return config.jwt.publicKeyPem;
  if (config.jwt.privateKeyPem) return createPublicKey(createPrivateKey(config.jwt.privateKeyPem)).export({ type: "spki", format: "pem" }).toString();
  try {
    return await readFile(path.join(config.dataDir, "keys", "jwt-es256.pub"), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/**
 * Checkpoints from a file: one checkpoint, an array of them, a device export
 * (`{checkpoints: [...]}`), or JSON Lines of any of these. Throws naming the file, line and reason.
 */
export async function readCheckpointFile(file: string): Promise<Checkpoint[]> {
  const text = await readFile(file, "utf8");
  let values: unknown[];
  try {
    values = [JSON.parse(text) as unknown];
  } catch {
    values = text.split("\n").filter((l) => l.trim() !== "").map((line, i) => {
      try {
        return JSON.parse(line) as unknown;
      } catch {
        throw new Error(`${file} line ${i + 1}: not JSON`);
      }
    });
  }
  const out: Checkpoint[] = [];
  const add = (raw: unknown, where: string): void => {
    const cp = parseCheckpoint(raw);
    if (typeof cp === "string") throw new Error(`${file} ${where}: ${cp}`);
    out.push(cp);
  };
  values.forEach((v, i) => {
    const list = Array.isArray(v) ? v : typeof v === "object" && v !== null && Array.isArray((v as { checkpoints?: unknown }).checkpoints) ? (v as { checkpoints: unknown[] }).checkpoints : [v];
    list.forEach((raw, j) => add(raw, `value ${i + 1}, checkpoint ${j + 1}`));
  });
  return out;
}
