/**
 * `npm run admin -- <command> [--flags]`: set up teams, users, devices and tokens. Prints JSON on
 * stdout. Teams are created by the running service (SERVICE_URL, or 127.0.0.1:PORT), with a
 * service token signed by the keys in DATA_DIR (or JWT_* keys): only the service writes its
 * document storage. The other commands work on MONGODB_URI directly, service running or not.
 *
 *   create-team   --team <id> [--oversell reject|allow-negative]
 *   create-user   --team <id> --username <name> --role member|auditor|admin  (password from
 *                 ADMIN_PASSWORD or stdin, never an argument: arguments show in `ps`)
 *   token         --team <id> --sub <user> --role <role> [--device <id>] [--ttl <seconds>]
 *   enroll-device --team <id> --device <id> --user <name> [--label <text>] [--ttl <seconds>]
 *
 * Exit code 0 on success, 1 when refused (exists, not found, invalid), 2 on usage errors, 3 when
 * the service is not reachable.
 */
import type { Role } from "../../shared/auth/claims.js";
import { AccountError, accounts } from "../accounts/store.js";
import { loadOrCreateKeys } from "../auth/keys.js";
import { createTokenService } from "../auth/tokens.js";
import { loadConfig } from "../config.js";
import { TeamError } from "../relay/teams.js";
import { connectCli, parseArgs } from "./common.js";
import { callService, ServiceRefused, ServiceUnreachable } from "./service-client.js";

class Usage extends Error {}

function flag(args: ReturnType<typeof parseArgs>, name: string, required = true): string | undefined {
  const v = args[name];
  if (typeof v === "string") return v;
  if (required) throw new Usage(`--${name} is required`);
  return undefined;
}

async function readPassword(): Promise<string> {
  const env = process.env.ADMIN_PASSWORD;
  if (env) return env;
  if (process.stdin.isTTY) throw new Usage("give the password in ADMIN_PASSWORD or on stdin");
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8").replace(/\r?\n$/, "");
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const command = args._[0];
  if (command === "create-team") {
    const team = flag(args, "team")!;
    const oversell = flag(args, "oversell", false);
    if (oversell !== undefined && oversell !== "reject" && oversell !== "allow-negative") throw new Usage("--oversell: reject or allow-negative");
    const out = await callService(loadConfig(), "POST", "/teams", { team, ...(oversell ? { settings: { oversell } } : {}) });
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return 0;
  }
  const cli = await connectCli();
  try {
    const { config, db } = cli;
    const acc = accounts(db);
    await acc.ensureIndexes();
    const tokensFor = async () =>
      createTokenService(await loadOrCreateKeys({ privateKeyPem: config.jwt.privateKeyPem, publicKeyPem: config.jwt.publicKeyPem, dataDir: config.dataDir }), config.jwt);
    const ttl = (): number | undefined => {
      const t = flag(args, "ttl", false);
      if (t === undefined) return undefined;
      const n = Number(t);
      if (!Number.isInteger(n) || n < 60 || n > 90 * 24 * 3600) throw new Usage("--ttl: seconds from 60 to 90 days");
      return n;
    };
    let out: unknown;
    switch (command) {
      case "create-user":
        out = await acc.createUser({ team: flag(args, "team")!, username: flag(args, "username"), password: await readPassword(), role: flag(args, "role") });
        break;
      case "token": {
        const tokens = await tokensFor();
        const device = flag(args, "device", false);
        const claims = { sub: flag(args, "sub")!, team: flag(args, "team")!, role: flag(args, "role")! as Role, ...(device ? { device } : {}) };
        out = { token: tokens.issue(claims, ttl()) };
        break;
      }
      case "enroll-device": {
        const team = flag(args, "team")!;
        const user = flag(args, "user")!;
        const found = await acc.findUser(team, user);
        if (!found) throw new AccountError(404, "no-such-user", `user ${user} is not in team ${team}`);
        const label = flag(args, "label", false);
        const doc = await acc.enrollDevice({ team, device: flag(args, "device"), user, enrolledBy: "admin-cli", ...(label ? { label } : {}) });
        const root = await db.collection<{ _id: string; rootDocumentId: string }>("teams").findOne({ _id: team });
        const tokens = await tokensFor();
        out = {
          team, device: doc.device, user,
          token: tokens.issue({ sub: user, team, role: found.role === "auditor" ? "auditor" : "member", device: doc.device }, ttl()),
          rootUrl: `automerge:${root!.rootDocumentId}`, publicKey: tokens.publicKeyPem,
        };
        break;
      }
      default:
        throw new Usage(`unknown command ${JSON.stringify(command ?? "")}: create-team, create-user, token or enroll-device`);
    }
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return 0;
  } finally {
    await cli.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    const refused = err instanceof AccountError || err instanceof TeamError || err instanceof ServiceRefused || (err instanceof Error && err.name === "ClaimsError");
    console.error(`admin: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(err instanceof ServiceUnreachable ? 3 : err instanceof Usage ? 2 : refused ? 1 : 2);
  },
);
