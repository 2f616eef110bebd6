/** What the command-line tools share: configuration, a database connection, and argument parsing. */
import { MongoClient, type Db } from "mongodb";
import { loadConfig, type Config } from "../config.js";
import { readServiceFile } from "../service-file.js";

export interface CliDb {
  config: Config;
  client: MongoClient;
  db: Db;
  close(): Promise<void>;
}

/**
 * Tools work on an existing database: MONGODB_URI, or the one the running service of DATA_DIR
 * uses (its service.json names it, the embedded one included).
 */
export async function connectCli(): Promise<CliDb> {
  const config = loadConfig();
  const running = config.mongodbUri ? undefined : await readServiceFile(config.dataDir);
  const uri = config.mongodbUri ?? running?.mongodbUri;
  if (!uri) {
    throw new Error(`no database: start the service on this data folder (npm start, DATA_DIR=${config.dataDir}), or set MONGODB_URI to the service's database`);
  }
  const client = new MongoClient(uri);
  await client.connect();
  const dbName = config.mongodbUri ? config.mongodbDb : (running?.mongodbDb ?? config.mongodbDb);
  return { config, client, db: client.db(dbName), close: () => client.close() };
}

/** The team named by `--team`, or every team in the database. */
export async function selectedTeams(db: Db, team: string | boolean | string[] | undefined): Promise<string[]> {
  if (typeof team === "string") return [team];
  return (await db.collection<{ _id: string }>("teams").find({}).toArray()).map((t) => t._id);
}

/** `--name value` and `--flag` arguments; positional ones in `_`. */
export function parseArgs(argv: readonly string[]): { _: string[]; [name: string]: string | boolean | string[] } {
  const out: { _: string[]; [name: string]: string | boolean | string[] } = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith("--")) {
      const next = argv[i + 1];
      if (next !== undefined && !next.startsWith("--")) {
        out[a.slice(2)] = next;
        i++;
      } else out[a.slice(2)] = true;
    } else out._.push(a);
  }
  return out;
}

/** A one-line progress bar on stderr (stdout stays for results). */
export function progress(label: string, done: number, total: number): void {
  const width = 30;
  const frac = total > 0 ? Math.min(1, done / total) : 1;
  const bar = "#".repeat(Math.round(frac * width)).padEnd(width, ".");
  process.stderr.write(`\r${label} [${bar}] ${done}/${total}`);
  if (done >= total) process.stderr.write("\n");
}
