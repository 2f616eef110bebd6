/**
 * One service per data folder: `$DATA_DIR/service.lock` names the process that holds the folder
 * (pid and, on Linux, the process's start time, so a pid reused by another process after a crash
 * does not count). A second service refuses to start; a lock left by a holder that was killed
 * (SIGKILL, power cut) is stale and taken over.
 */
import { readFileSync } from "node:fs";
import { open, readFile, rename, unlink, writeFile } from "node:fs/promises";
import path from "node:path";

export interface LockHolder {
  pid: number;
  /** Start time of the process in clock ticks since boot (/proc/<pid>/stat field 22), when known. */
  startTime: number | null;
  what: string;
  since: string;
}

export interface DataDirLock {
  /** The previous holder, when its lock was stale and this one took it over. */
  tookOverFrom: LockHolder | null;
  release(): Promise<void>;
}

export class DataDirInUseError extends Error {
  constructor(
    readonly dataDir: string,
    readonly holder: LockHolder,
  ) {
    super(
      `DATA_DIR ${dataDir} is in use by ${holder.what} (pid ${holder.pid}, since ${holder.since}): ` +
        "stop it first, or give this one another DATA_DIR",
    );
  }
}

function startTimeOf(pid: number): number | null {
  try {
    // The command name (field 2) may hold spaces and parentheses: count fields after its ")".
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[19]);
    return Number.isFinite(ticks) ? ticks : null;
  } catch {
    return null;
  }
}

function alive(holder: LockHolder): boolean {
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  // The pid exists; it is the holder only if it started when the holder did.
  return holder.startTime === null || startTimeOf(holder.pid) === holder.startTime;
}

async function readHolder(file: string): Promise<LockHolder | null> {
  try {
    const parsed = JSON.parse(await readFile(file, "utf8")) as Partial<LockHolder>;
    if (typeof parsed.pid !== "number") return null;
    return { pid: parsed.pid, startTime: parsed.startTime ?? null, what: parsed.what ?? "another process", since: parsed.since ?? "?" };
  } catch {
    return null;
  }
}

export async function lockDataDir(dataDir: string, what: string): Promise<DataDirLock> {
  const file = path.join(dataDir, "service.lock");
  const me: LockHolder = { pid: process.pid, startTime: startTimeOf(process.pid), what, since: new Date().toISOString() };
  const body = `${JSON.stringify(me)}\n`;
  let tookOverFrom: LockHolder | null = null;
  try {
    const fh = await open(file, "wx", 0o600);
    await fh.writeFile(body);
    await fh.close();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    const holder = await readHolder(file);
    if (holder && holder.pid !== process.pid && alive(holder)) throw new DataDirInUseError(dataDir, holder);
    // Stale (or unreadable: a holder killed while writing it). Replace it in one rename, then
    // check that no other starter replaced it after us.
    const tmp = `${file}.${process.pid}`;
    await writeFile(tmp, body, { mode: 0o600 });
    await rename(tmp, file);
    const now = await readHolder(file);
    if (now?.pid !== process.pid) throw new DataDirInUseError(dataDir, now ?? holder ?? me);
    tookOverFrom = holder;
  }
  return {
    tookOverFrom,
    async release() {
      if ((await readHolder(file))?.pid === process.pid) await unlink(file).catch(() => undefined);
    },
  };
}
