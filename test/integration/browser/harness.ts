/**
 * A real Chromium (Debian's /usr/bin/chromium, driven by playwright-core: no browser download)
 * against a running shop: the API shop (users alice admin, bob member, carol auditor) serving the
 * browser pages built fresh from source into dist/web/.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { packageRoot } from "../../../server/entry-point.js";
import { collections } from "../../../server/materializer/collections.js";
import { startApiShop, type ApiShop } from "../api/harness.js";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
/** Screenshots of the main screens, kept as test artefacts. */
export const SCREENSHOTS = path.join(packageRoot, "test-results", "browser");

export interface BrowserShop {
  shop: ApiShop;
  browser: Browser;
  /** A fresh context (its own storage, like another tablet) at 1024×768 unless told. */
  context(viewport?: { width: number; height: number }): Promise<BrowserContext>;
  /** Journal records of the team in MongoDB, by entry id. */
  journal(): Promise<Map<string, { status: string; reason: string | null; seq: number }>>;
  close(): Promise<void>;
}

export function chromiumInstalled(): boolean {
  return existsSync(CHROMIUM);
}

export async function buildPages(): Promise<void> {
  await promisify(execFile)(process.execPath, [path.join(packageRoot, "tools", "build-web.mjs")], { cwd: packageRoot });
}

export async function startBrowserShop(): Promise<BrowserShop> {
  await buildPages();
  await mkdir(SCREENSHOTS, { recursive: true });
  // Checkpoints signed every few records, so the audit view has signatures to check.
  const shop = await startApiShop({}, { checkpoints: { everyRecords: 3, everyMs: 500 } });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
  const contexts: BrowserContext[] = [];
  const c = collections(shop.relay.db.db);
  return {
    shop,
    browser,
    async context(viewport = { width: 1024, height: 768 }) {
      const ctx = await browser.newContext({ viewport, baseURL: shop.relay.service.url, hasTouch: viewport.width < 700 });
      contexts.push(ctx);
      return ctx;
    },
    async journal() {
      const rows = await c.journal.find({ team: shop.team.team }).toArray();
      return new Map(rows.map((r) => [r.entryId, { status: r.status, reason: r.reason, seq: r.seq }]));
    },
    async close() {
      for (const ctx of contexts) await ctx.close().catch(() => undefined);
      await browser.close().catch(() => undefined);
      await shop.close();
    },
  };
}

/** Signs the till in with a password, by keyboard only (Tab between fields, Enter submits), and waits for its screens. */
export async function signInTill(page: Page, team: string, user = "bob"): Promise<void> {
  await page.goto("/app/");
  await page.getByLabel("Team").focus();
  await page.keyboard.type(team);
  await page.keyboard.press("Tab");
  await page.keyboard.type(user);
  await page.keyboard.press("Tab");
  await page.keyboard.type(`pw-${user}-12345`);
  await page.keyboard.press("Enter");
  await page.getByRole("navigation", { name: "Screens" }).waitFor({ timeout: 30_000 });
}
