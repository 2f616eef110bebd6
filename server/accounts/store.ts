/**
 * Users and enrolled devices (`users`, `devices`), one module of typed collections with their
 * indexes. Password hashes stay in here: nothing outside reads a user with its hash except login.
 */
import type { Collection, Db } from "mongodb";
import type { Role } from "../../shared/auth/claims.js";
import { hashPassword, MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from "./passwords.js";

export type UserRole = Exclude<Role, "service">;
export const USER_ROLES: readonly UserRole[] = ["member", "auditor", "admin"];

/** Usernames become the token's `sub` and a key part: no ':' or '/' (identity separators). */
export const USERNAME = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;
export const DEVICE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export interface UserDoc {
  /** `<team>:<username>` */
  _id: string;
  team: string;
  username: string;
  role: UserRole;
  passwordHash: string;
  createdAt: Date;
}

export interface DeviceDoc {
  /** `<team>:<device>` */
  _id: string;
  team: string;
  device: string;
  /** The user its tokens name as `sub`. */
  user: string;
  label: string;
  enrolledBy: string;
  createdAt: Date;
}

export class AccountError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "AccountError";
  }
}

export interface PublicUser {
  team: string;
  username: string;
  role: UserRole;
  createdAt: string;
}

export interface Accounts {
  users: Collection<UserDoc>;
  devices: Collection<DeviceDoc>;
  ensureIndexes(): Promise<void>;
  teamExists(team: string): Promise<boolean>;
  createUser(input: { team: string; username: unknown; password: unknown; role: unknown }): Promise<PublicUser>;
  findUser(team: string, username: string): Promise<UserDoc | null>;
  enrollDevice(input: { team: string; device: unknown; user: string; label?: unknown; enrolledBy: string }): Promise<DeviceDoc>;
  findDevice(team: string, device: string): Promise<DeviceDoc | null>;
}

export function accounts(db: Db): Accounts {
  const users = db.collection<UserDoc>("users");
  const devices = db.collection<DeviceDoc>("devices");
  const teams = db.collection<{ _id: string }>("teams");
  return {
    users,
    devices,
    async ensureIndexes() {
      await users.createIndex({ team: 1, username: 1 }, { unique: true, name: "team_username" });
      await devices.createIndex({ team: 1, device: 1 }, { unique: true, name: "team_device" });
    },
    async teamExists(team) {
      return (await teams.countDocuments({ _id: team }, { limit: 1 })) > 0;
    },
    async createUser({ team, username, password, role }) {
      if (typeof username !== "string" || !USERNAME.test(username)) {
        throw new AccountError(400, "invalid-username", "username: expected 1-64 letters, digits, '.', '_', '@' or '-'");
      }
      if (typeof password !== "string" || password.length < MIN_PASSWORD_LENGTH || password.length > MAX_PASSWORD_LENGTH) {
        throw new AccountError(400, "invalid-password", `password: expected ${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH} characters`);
      }
      if (typeof role !== "string" || !(USER_ROLES as readonly string[]).includes(role)) {
        throw new AccountError(400, "invalid-role", `role: expected one of ${USER_ROLES.join(", ")}`);
      }
      if (!(await this.teamExists(team))) throw new AccountError(404, "no-such-team", `team ${team} does not exist`);
      const doc: UserDoc = { _id: `${team}:${username}`, team, username, role: role as UserRole, passwordHash: await hashPassword(password), createdAt: new Date() };
      try {
        await users.insertOne(doc);
      } catch (err) {
        if ((err as { code?: number }).code === 11000) throw new AccountError(409, "user-exists", `user ${username} exists in team ${team}`);
        throw err;
      }
      return { team, username, role: doc.role, createdAt: doc.createdAt.toISOString() };
    },
    findUser: (team, username) => users.findOne({ _id: `${team}:${username}` }),
    async enrollDevice({ team, device, user, label, enrolledBy }) {
      if (typeof device !== "string" || !DEVICE_ID.test(device)) {
        throw new AccountError(400, "invalid-device", "device: expected 1-64 letters, digits, '.', '_' or '-'");
      }
      if (label !== undefined && (typeof label !== "string" || label.length > 200)) {
        throw new AccountError(400, "invalid-label", "label: expected a string of at most 200 characters");
      }
      if (!(await this.teamExists(team))) throw new AccountError(404, "no-such-team", `team ${team} does not exist`);
      const doc: DeviceDoc = { _id: `${team}:${device}`, team, device, user, label: label ?? "", enrolledBy, createdAt: new Date() };
      try {
        await devices.insertOne(doc);
      } catch (err) {
        if ((err as { code?: number }).code === 11000) throw new AccountError(409, "device-exists", `device ${device} is already enrolled in team ${team}`);
        throw err;
      }
      return doc;
    },
    findDevice: (team, device) => devices.findOne({ _id: `${team}:${device}` }),
  };
}
