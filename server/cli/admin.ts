/**
 * `npm run admin -- <command> [--flags]`: set up teams, users and devices, and sign tokens. With
 * the service running on this data folder it needs no environment at all: commands go to the
 * service's HTTP API (found through `$DATA_DIR/service.json`, else SERVICE_URL or HOST:PORT)
 * with a short service token signed by the keys in DATA_DIR, so only the service writes its
 * documents and its database. `token` only signs, with the same keys, and needs no service.
 *
 * Output: readable on a terminal, JSON with --json or when piped. Exit code 0 on success, 1 when
 * refused (exists, not found, invalid), 2 on usage errors, 3 when the service is not reachable.
 */
import type { Role } from "../../shared/auth/claims.js";
import { loadOrCreateKeys } from "../auth/keys.js";
import { createTokenService } from "../auth/tokens.js";
import { loadConfig } from "../config.js";
import { enrolmentLink } from "../../shared/enrolment-link.js";
import { parseArgs } from "./common.js";
import { callService, ServiceRefused, ServiceUnreachable } from "./service-client.js";

class Usage extends Error {}

type Args = ReturnType<typeof parseArgs>;

interface AdminCommand {
  name: string;
  summary: string;
  usage: string;
  example: string;
  run(args: Args): Promise<Record<string, unknown>>;
}

function flag(args: Args, name: string, required = true): string | undefined {
  const v = args[name];
  if (typeof v === "string") return v;
  if (v === true) throw new Usage(`--${name} needs a value`);
  if (required) throw new Usage(`--${name} is required`);
  return undefined;
}

async function readPassword(): Promise<string> {
  const env = process.env.ADMIN_PASSWORD;
  if (env) return env;
  if (process.stdin.isTTY) throw new Usage("give the password in ADMIN_PASSWORD or on stdin (never as an argument: arguments show in ps)");
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8").replace(/\r?\n$/, "");
}

const ROLES = ["member", "auditor", "admin"];

const COMMANDS: AdminCommand[] = [
  {
    name: "create-team",
    summary: "create a team: its root, segment registry, catalog and status documents",
    usage: "create-team --team ID [--oversell reject|allow-negative]",
    example: "npm run admin -- create-team --team corner-shop",
    async run(args) {
      const team = flag(args, "team")!;
      const oversell = flag(args, "oversell", false);
      if (oversell !== undefined && oversell !== "reject" && oversell !== "allow-negative") throw new Usage("--oversell: reject or allow-negative");
      return (await callService(loadConfig(), "POST", "/teams", { team, ...(oversell ? { settings: { oversell } } : {}) })) as Record<string, unknown>;
    },
  },
  {
    name: "create-user",
    summary: "add a user to a team (the password from ADMIN_PASSWORD or stdin)",
    usage: "create-user --team ID --username NAME --role member|auditor|admin",
    example: "ADMIN_PASSWORD=... npm run admin -- create-user --team corner-shop --username ana --role admin",
    async run(args) {
      const team = flag(args, "team")!;
      const username = flag(args, "username")!;
      const role = flag(args, "role")!;
      if (!ROLES.includes(role)) throw new Usage(`--role: one of ${ROLES.join(", ")}`);
      const password = await readPassword();
      return (await callService(loadConfig(), "POST", `/teams/${encodeURIComponent(team)}/users`, { username, password, role })) as Record<string, unknown>;
    },
  },
  {
    name: "enroll-device",
    summary: "enroll a device for a user: prints what the device's enroll needs (token, root URL, public key) and a link that opens the web till enrolled",
    usage: "enroll-device --team ID --device ID --user NAME [--label TEXT] [--app-url URL]",
    example: "npm run admin -- enroll-device --team corner-shop --device till-1 --user ana > till-1.json",
    async run(args) {
      const team = flag(args, "team")!;
      const label = flag(args, "label", false);
      const body = { device: flag(args, "device")!, user: flag(args, "user")!, ...(label ? { label } : {}) };
      const config = loadConfig();
      const enrolled = (await callService(config, "POST", `/teams/${encodeURIComponent(team)}/devices`, body)) as Record<string, unknown>;
      // The address tablets reach the service at (a proxy's, say); the service's own by default.
      const appUrl = flag(args, "app-url", false) ?? config.serviceUrl;
      const { team: t, device, user, token, rootUrl, publicKey } = enrolled;
      return { ...enrolled, link: enrolmentLink(appUrl, { team: t, device, user, token, rootUrl, publicKey }) };
    },
  },
  {
    name: "close-day",
    summary: "close the team's books through a day (every earlier day too): late entries go to the next open day",
    usage: "close-day --team ID --through YYYY-MM-DD",
    example: "npm run admin -- close-day --team corner-shop --through 2026-11-20",
    async run(args) {
      const team = flag(args, "team")!;
      const through = flag(args, "through")!;
      if (!/^\d{4}-\d{2}-\d{2}$/.test(through)) throw new Usage("--through: a day as YYYY-MM-DD (UTC)");
      return (await callService(loadConfig(), "POST", `/teams/${encodeURIComponent(team)}/periods/close`, { through })) as Record<string, unknown>;
    },
  },
  {
    name: "periods",
    summary: "show the team's closed periods and pending close requests",
    usage: "periods --team ID",
    example: "npm run admin -- periods --team corner-shop",
    async run(args) {
      const team = flag(args, "team")!;
      return (await callService(loadConfig(), "GET", `/teams/${encodeURIComponent(team)}/periods`)) as Record<string, unknown>;
    },
  },
  {
    name: "token",
    summary: "sign a token with this data folder's keys (no service needed)",
    usage: "token --team ID --sub USER --role member|auditor|admin|service [--device ID] [--ttl SECONDS]",
    example: "npm run admin -- token --team corner-shop --sub auditor-1 --role auditor --ttl 3600",
    async run(args) {
      const config = loadConfig();
      const tokens = createTokenService(await loadOrCreateKeys({ privateKeyPem: config.jwt.privateKeyPem, publicKeyPem: config.jwt.publicKeyPem, dataDir: config.dataDir }), config.jwt);
      const t = flag(args, "ttl", false);
      const ttl = t === undefined ? undefined : Number(t);
      if (ttl !== undefined && (!Number.isInteger(ttl) || ttl < 60 || ttl > 90 * 24 * 3600)) throw new Usage("--ttl: seconds from 60 to 90 days");
      const device = flag(args, "device", false);
      const claims = { sub: flag(args, "sub")!, team: flag(args, "team")!, role: flag(args, "role")! as Role, ...(device ? { device } : {}) };
      return { token: tokens.issue(claims, ttl) };
    },
  },
];

function overview(): string {
  return [
    "usage: npm run admin -- <command> [options]",
    "",
    "commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(14)} ${c.summary}`),
    "",
    "npm run admin -- <command> --help   shows a command's options and an example",
    "The service must be running on the same data folder (npm start), except for token.",
  ].join("\n");
}

function print(value: Record<string, unknown>, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    return;
  }
  for (const [k, v] of Object.entries(value)) process.stdout.write(`${k}: ${typeof v === "string" ? v.trimEnd() : JSON.stringify(v)}\n`);
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const name = args._[0];
  if (name === undefined || name === "help") {
    process.stdout.write(`${overview()}\n`);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) throw new Usage(`unknown command ${JSON.stringify(name)}: ${COMMANDS.map((c) => c.name).join(", ")} (npm run admin -- --help)`);
  if (args.help) {
    process.stdout.write(`${command.name}: ${command.summary}\n\nusage: npm run admin -- ${command.usage} [--json]\n\nexample: ${command.example}\n`);
    return 0;
  }
  print(await command.run(args), args.json === true || !process.stdout.isTTY);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    const refused = err instanceof ServiceRefused || (err instanceof Error && err.name === "ClaimsError");
    console.error(`admin: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(err instanceof ServiceUnreachable ? 3 : err instanceof Usage ? 2 : refused ? 1 : 2);
  },
);
