/** Every page of one API list, followed by its cursor, up to a bound (a browser is not a data warehouse). */
import { api } from "../common/api.js";

export const MAX_ROWS = 20_000;
const PAGE = 500;

export interface Page<R> {
  rows: R[];
  nextAfter: string | number | null;
  hasMore: boolean;
  publicKey?: string;
}

export async function readAll<R>(path: string, token: string): Promise<{ rows: R[]; truncated: boolean; publicKey?: string }> {
  const rows: R[] = [];
  let after: string | number | null = null;
  let publicKey: string | undefined;
  for (;;) {
    const sep = path.includes("?") ? "&" : "?";
    const page: Page<R> = await api<Page<R>>(`${path}${sep}limit=${PAGE}${after !== null ? `&after=${encodeURIComponent(String(after))}` : ""}`, { token });
    rows.push(...page.rows);
    publicKey ??= page.publicKey;
    if (!page.hasMore || page.nextAfter === null || page.nextAfter === after) return { rows, truncated: false, ...(publicKey ? { publicKey } : {}) };
    if (rows.length >= MAX_ROWS) return { rows, truncated: true, ...(publicKey ? { publicKey } : {}) };
    after = page.nextAfter;
  }
}
