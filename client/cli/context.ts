/**
 * What every device command shares: the device's saved configuration, the context a command
 * runs in, and opening the device for the length of one command.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { AutomergeUrl } from "@automerge/automerge-repo";
import type { Device } from "../device.js";
import { ClientError } from "../errors.js";
import { openDevice } from "../node.js";
import type { Options, Values } from "./args.js";
import type { Output } from "./output.js";

export interface CliConfig {
  server: string;
  /** Every relay of the service (enroll --relay), when there are several. */
  relays?: string[];
  token: string;
  device: string;
  root: AutomergeUrl;
  publicKeyPem?: string;
}

export const CONFIG_FILE = "device.json";

export interface Context {
  values: Values;
  dataDir: string;
  out: Output;
}

export interface Command {
  /** One or two words: `sale`, `item add`. */
  name: string;
  summary: string;
  options: Options;
  example: string;
  run(ctx: Context): Promise<void>;
}

export async function loadConfig(dataDir: string): Promise<CliConfig> {
  try {
    return JSON.parse(await readFile(path.join(dataDir, CONFIG_FILE), "utf8")) as CliConfig;
  } catch {
    throw new ClientError("not-enrolled", `no ${CONFIG_FILE} in ${dataDir}: enroll this device first (npm run device -- enroll --help)`);
  }
}

export async function withDevice(ctx: Context, fn: (d: Device) => Promise<void>, offline = ctx.values.offline === true): Promise<void> {
  const c = await loadConfig(ctx.dataDir);
  const device = await openDevice({
    serverUrl: c.server, token: c.token, deviceId: c.device, rootUrl: c.root, dataDir: ctx.dataDir, offline,
    ...(c.publicKeyPem ? { publicKeyPem: c.publicKeyPem } : {}),
    ...(Array.isArray(c.relays) && c.relays.length > 0 ? { relayUrls: c.relays } : {}),
  });
  // A peer's change to a server-owned document was refused: worth a line, it is someone's forgery.
  device.on("dropped", (e) => process.stderr.write(`${JSON.stringify({ warning: "dropped-peer-change", ...e })}\n`));
  try {
    await fn(device);
  } finally {
    await device.close();
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

