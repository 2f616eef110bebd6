/** What the API's routes are built from; one options type for the whole router. */
import type { Repo } from "@automerge/automerge-repo";
import type { Db } from "mongodb";
import type { Accounts } from "../accounts/store.js";
import type { RateLimiter } from "../accounts/rate-limit.js";
import type { TokenService } from "../auth/tokens.js";
import type { Gateway } from "../gateway/gateway.js";
import type { Logger } from "../log.js";
import type { TeamProblem } from "../health/team-health.js";
import type { Collections } from "../materializer/collections.js";
import type { DocumentRegistry } from "../relay/registry.js";
import type { Teams } from "../relay/teams.js";

export interface ApiDeps {
  db: Db;
  repo: Repo;
  teams: Teams;
  registry: DocumentRegistry;
  tokens: TokenService;
  logger: Logger;
  /** Lifetime of tokens issued at login and enrollment, seconds. */
  tokenTtlSeconds: number;
  accounts: Accounts;
  loginLimiter: RateLimiter;
  /** Signs login tickets (server/accounts/login-tickets.ts); without it, a key of this process only. */
  loginTicketKey?: Buffer;
  gateway: Gateway;
  /** The materializer's collections (read-only here, but for admins' close requests: routes/periods.ts). */
  c: Collections;
  /** Look documents up one `_id` at a time instead of with `$in` (FerretDB scans for `$in`; DatabaseFeatures). */
  pointLookups?: boolean;
  /** Why a team's documents cannot be loaded (the service's); absent: the materializer's records only. */
  teamProblems?: (team: string) => Promise<TeamProblem[]>;
}
