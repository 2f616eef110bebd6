/**
 * The ES256 key pair that signs tokens: from configuration when given, otherwise generated once
 * into `<dataDir>/keys/` (mode 0600) so tokens survive restarts of the embedded default.
 */
import { generateKeyPairSync, createPrivateKey, createPublicKey } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";

export interface KeyPair {
  privateKeyPem: string;
  publicKeyPem: string;
}

export interface KeySource {
  privateKeyPem: string | undefined;
  publicKeyPem: string | undefined;
  dataDir: string;
}

export async function loadOrCreateKeys(src: KeySource): Promise<KeyPair> {
  if (src.privateKeyPem) {
    const publicKeyPem =
      src.publicKeyPem ?? createPublicKey(createPrivateKey(src.privateKeyPem)).export({ type: "spki", format: "pem" }).toString();
    return checked({ privateKeyPem: src.privateKeyPem, publicKeyPem });
  }
  if (src.publicKeyPem) {
    throw new Error("configuration JWT_PUBLIC_KEY without JWT_PRIVATE_KEY: the relay must sign tokens");
  }
  const dir = path.join(src.dataDir, "keys");
  const privPath = path.join(dir, "jwt-es256.key");
  const pubPath = path.join(dir, "jwt-es256.pub");
  try {
    return checked({ privateKeyPem: await readFile(privPath, "utf8"), publicKeyPem: await readFile(pubPath, "utf8") });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const pair = {
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
  // "wx": two processes starting on one data folder must not overwrite each other's key.
  try {
    await writeFile(privPath, pair.privateKeyPem, { mode: 0o600, flag: "wx" });
    await writeFile(pubPath, pair.publicKeyPem, { mode: 0o600, flag: "wx" });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    return checked({ privateKeyPem: await readFile(privPath, "utf8"), publicKeyPem: await readFile(pubPath, "utf8") });
  }
  return pair;
}

function checked(pair: KeyPair): KeyPair {
  const key = createPrivateKey(pair.privateKeyPem);
  if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
    throw new Error("JWT key: expected an EC P-256 key for ES256");
  }
  return pair;
}
