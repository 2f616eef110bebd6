/**
 * `$DATA_DIR/service.json`: where the service of a data folder listens and which database it
 * uses, so the command-line tools find a running service (and its embedded database, whose
 * port is its own choice) with no environment copied from logs. Written atomically when the
 * service is up, removed when it stops; one left by a killed service names a dead pid and is
 * ignored.
 */
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";

export interface ServiceFile {
  url: string;
  pid: number;
  startedAt: string;
  /** The database the service uses: the embedded one's URI, so tools can reach it too. */
  mongodbUri: string;
  mongodbDb: string;
}

const NAME = "service.json";

export async function writeServiceFile(dataDir: string, info: ServiceFile): Promise<void> {
  const file = path.join(dataDir, NAME);
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, file);
}

export async function removeServiceFile(dataDir: string): Promise<void> {
  await rm(path.join(dataDir, NAME), { force: true });
}

/** The running service of `dataDir`, if its file names a live process. */
export async function readServiceFile(dataDir: string): Promise<ServiceFile | undefined> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path.join(dataDir, NAME), "utf8"));
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null) return undefined;
  const r = parsed as Record<string, unknown>;
  if (typeof r.url !== "string" || typeof r.pid !== "number" || typeof r.mongodbUri !== "string" || typeof r.mongodbDb !== "string") return undefined;
  if (!alive(r.pid)) return undefined;
  return { url: r.url, pid: r.pid, startedAt: String(r.startedAt), mongodbUri: r.mongodbUri, mongodbDb: r.mongodbDb };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
