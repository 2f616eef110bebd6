/** Login, users and device enrollment. Passwords go to the hasher and nowhere else (never logged). */
import { isTeamId, type Claims } from "../../../shared/auth/claims.js";
import { AccountError } from "../../accounts/store.js";
import { randomBytes } from "node:crypto";
import { issueLoginTicket, loginTicketId } from "../../accounts/login-tickets.js";
import { decoyHash, verifyPassword } from "../../accounts/passwords.js";
import type { ApiDeps } from "../deps.js";
import { ApiError, type Route } from "../route.js";
import { errors } from "../schemas.js";

const adminOf = (c: Claims, team: string | undefined): boolean => c.role === "service" || (c.role === "admin" && c.team === team);

function accountError(err: unknown): never {
  if (err instanceof AccountError) throw new ApiError(err.status, err.code, err.message);
  throw err;
}

const TokenAnswer = {
  type: "object",
  required: ["token", "expiresAt", "team", "user", "role"],
  properties: {
    token: { type: "string" }, expiresAt: { type: "string" }, team: { type: "string" }, user: { type: "string" },
    role: { enum: ["member", "auditor", "admin"] }, device: { type: "string" },
    clientTicket: { type: "string", description: "send it with this account's next logins: failed attempts of other clients then never block this one" },
  },
};

export function accountRoutes(deps: ApiDeps): Route[] {
  const { accounts, tokens } = deps;
  const ticketKey = deps.loginTicketKey ?? randomBytes(32);
  const issue = (claims: Omit<Claims, "exp">, ttl = deps.tokenTtlSeconds): { token: string; expiresAt: string } => {
    const exp = Math.floor(Date.now() / 1000) + ttl;
    return { token: tokens.issue({ ...claims, exp }), expiresAt: new Date(exp * 1000).toISOString() };
  };
  return [
    {
      method: "post",
      path: "/auth/login",
      summary: "Exchange a team, username and password for a token",
      tag: "accounts",
      auth: false,
      body: {
        type: "object",
        required: ["team", "username", "password"],
        properties: {
          team: { type: "string" }, username: { type: "string" }, password: { type: "string" }, device: { type: "string" },
          clientTicket: { type: "string", description: "the ticket an earlier login of this account on this client answered" },
        },
      },
      responses: { 200: { description: "a token", schema: TokenAnswer }, ...errors(400, 401, 403, 429) },
      async handle({ body, ip, log }) {
        const { team, username, password, device } = body;
        if (typeof team !== "string" || typeof username !== "string" || typeof password !== "string") {
          throw new ApiError(400, "invalid-login", "team, username and password must be strings");
        }
        if (device !== undefined && typeof device !== "string") throw new ApiError(400, "invalid-login", "device must be a string");
        // Failed attempts are counted per client and account; once over the limit even the right
        // password waits, so guessing cannot go on in the background of a user's own logins. A
        // client that logged in to this account before shows its ticket and has a bucket of its
        // own: others' failures (from the same address, behind the same proxy) never lock it out.
        const ticket = loginTicketId(ticketKey, team, username, body.clientTicket);
        const limitKey = ticket !== null ? `ticket|${ticket}` : `${ip}|${team}|${username}`;
        const retry = deps.loginLimiter.blocked(limitKey);
        if (retry > 0) {
          log.warn({ team, username, ip }, "login rate limited");
          return {
            status: 429,
            headers: { "Retry-After": String(retry) },
            body: { error: { code: "rate-limited", message: `too many login attempts; retry in ${retry} s` } },
          };
        }
        const user = isTeamId(team) && username.length <= 64 ? await accounts.findUser(team, username) : null;
        // An unknown user costs the same scrypt work as a wrong password.
        const ok = password.length <= 256 && (await verifyPassword(password, user?.passwordHash ?? (await decoyHash())));
        if (!user || !ok) {
          deps.loginLimiter.hit(limitKey);
          log.info({ team, username, ip }, "login refused");
          throw new ApiError(401, "invalid-credentials", "invalid team, username or password");
        }
        const claims: Omit<Claims, "exp"> = { sub: user.username, team: user.team, role: user.role };
        if (device !== undefined) {
          const enrolled = await accounts.findDevice(user.team, device);
          if (!enrolled) throw new ApiError(400, "unknown-device", `device ${device.slice(0, 64)} is not enrolled in team ${user.team}`);
          // A device token acts as the device's user: naming a team mate's device would let its
          // holder write as that device (and take its peer id on the relay).
          if (enrolled.user !== user.username) {
            log.warn({ team, username, device }, "login refused: device enrolled to another user");
            throw new ApiError(403, "device-of-another-user", `device ${enrolled.device} of team ${user.team} is enrolled to another user, not ${user.username}`);
          }
          claims.device = enrolled.device;
        }
        log.info({ team, username, device }, "login");
        const clientTicket = ticket !== null ? (body.clientTicket as string) : issueLoginTicket(ticketKey, user.team, user.username);
        return {
          status: 200,
          body: { ...issue(claims), team: user.team, user: user.username, role: user.role, ...(claims.device ? { device: claims.device } : {}), clientTicket },
        };
      },
    },
    {
      method: "post",
      path: "/teams/:team/users",
      summary: "Create a user of the team (admins)",
      tag: "accounts",
      body: {
        type: "object",
        required: ["username", "password", "role"],
        properties: { username: { type: "string" }, password: { type: "string" }, role: { enum: ["member", "auditor", "admin"] } },
      },
      authorize: (c, ctx) => adminOf(c, ctx.params.team),
      responses: {
        201: {
          description: "created",
          schema: { type: "object", required: ["team", "username", "role"], properties: { team: { type: "string" }, username: { type: "string" }, role: { type: "string" }, createdAt: { type: "string" } } },
        },
        ...errors(400, 401, 403, 404, 409),
      },
      async handle({ params, body }) {
        const user = await accounts.createUser({ team: params.team ?? "", username: body.username, password: body.password, role: body.role }).catch(accountError);
        return { status: 201, body: user };
      },
    },
    {
      method: "post",
      path: "/teams/:team/devices",
      summary: "Enroll a device: its token, the team root URL and the team's public key (the device then certifies its own key: POST /api/devices/certificate)",
      tag: "accounts",
      body: { type: "object", required: ["device"], properties: { device: { type: "string" }, user: { type: "string" }, label: { type: "string" } } },
      authorize: (c, ctx) => adminOf(c, ctx.params.team),
      responses: {
        201: {
          description: "enrolled",
          schema: {
            type: "object",
            required: ["team", "device", "user", "token", "expiresAt", "rootUrl", "publicKey"],
            properties: {
              team: { type: "string" }, device: { type: "string" }, user: { type: "string" }, token: { type: "string" }, expiresAt: { type: "string" },
              rootUrl: { type: "string" }, publicKey: { type: "string" },
            },
          },
        },
        ...errors(400, 401, 403, 404, 409),
      },
      async handle({ params, body, claims }) {
        const team = params.team ?? "";
        const rootUrl = await deps.teams.rootUrl(team);
        if (!rootUrl) throw new ApiError(404, "no-such-team", `team ${team} does not exist`);
        // The device acts for a user of the team; by default the admin enrolling it.
        let user = claims!.role === "service" ? undefined : claims!.sub;
        if (body.user !== undefined) {
          if (typeof body.user !== "string" || !(await accounts.findUser(team, body.user))) throw new ApiError(404, "no-such-user", `user ${String(body.user).slice(0, 64)} is not in team ${team}`);
          user = body.user;
        }
        if (user === undefined) throw new ApiError(400, "invalid-user", "body.user: name the user the device acts for");
        const doc = await accounts.enrollDevice({ team, device: body.device, user, label: body.label, enrolledBy: claims!.sub }).catch(accountError);
        const found = await accounts.findUser(team, user);
        const role = found?.role === "auditor" ? "auditor" : "member";
        return {
          status: 201,
          body: { team, device: doc.device, user, ...issue({ sub: user, team, role, device: doc.device }), rootUrl, publicKey: tokens.publicKeyPem },
        };
      },
    },
  ];
}
