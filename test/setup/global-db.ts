/**
 * One MongoDB-wire server for the whole test run: MONGODB_URI when set (a real MongoDB), else
 * the embedded resolver (FerretDB on this machine). Test files get its URI through `inject`.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { resolveDatabase, type DatabaseHandle } from "../../server/db/resolve.js";

declare module "vitest" {
  export interface ProvidedContext {
    mongoUri: string;
    database: Pick<DatabaseHandle, "kind" | "server" | "features">;
  }
}

let handle: DatabaseHandle | undefined;
let dataDir: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  dataDir = await mkdtemp(path.join(os.tmpdir(), "ledger-sync-testdb-"));
  handle = await resolveDatabase({ dataDir, uri: process.env.MONGODB_URI });
  project.provide("mongoUri", handle.uri);
  project.provide("database", { kind: handle.kind, server: handle.server, features: handle.features });
  console.log(`[test db] ${handle.kind}: ${handle.server} at ${handle.uri} (transactions: ${handle.features.transactions})`);
}

export async function teardown(): Promise<void> {
  await handle?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
}
