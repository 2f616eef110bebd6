/**
 * The web till in a real Chromium: signed in with a password, selling online and offline (the
 * browser's offline emulation, a reload served by the service worker), and the notice when a sale
 * made offline comes back rejected. Each check is what the clerk sees or what MongoDB's journal holds.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Page } from "playwright-core";
import { chromiumInstalled, SCREENSHOTS, signInTill, startBrowserShop, type BrowserShop } from "./harness.js";

let b: BrowserShop;
beforeAll(async () => {
  b = await startBrowserShop();
}, 120_000);
afterAll(async () => {
  await b?.close();
});

const LONG = { timeout: 60_000 };

async function entryRows(page: Page): Promise<Array<{ id: string; status: string; text: string }>> {
  await page.getByRole("button", { name: "Entries" }).click();
  return page.locator("tr[data-entry]").evaluateAll((rows) =>
    rows.map((r) => ({ id: r.getAttribute("data-entry") ?? "", status: r.getAttribute("data-status") ?? "", text: r.textContent ?? "" })),
  );
}

describe.skipIf(!chromiumInstalled())("web till", () => {
  it("signs in, sells online, and shows the verdict the journal holds", async () => {
    const page = await (await b.context()).newPage();
    page.on("console", (m) => console.log(`[page] ${m.type()} ${m.text()}`));
    page.on("pageerror", (e) => console.log(`[page error] ${e.message}`));
    await signInTill(page, b.shop.team.team);
    await expect.poll(() => page.locator("#connection").textContent(), LONG).toBe("Online");

    await page.getByRole("button", { name: "Catalog" }).click();
    await page.getByLabel("Name").fill("Tea");
    await page.getByLabel("Price").fill("2.50");
    await page.getByRole("button", { name: "Add item" }).click();
    await expect.poll(() => page.locator("#message").textContent(), LONG).toContain("Item Tea added");

    await page.getByRole("button", { name: "Receive stock" }).click();
    await page.getByLabel("Quantity received").fill("5");
    await page.getByRole("button", { name: "Record receipt" }).click();
    await expect.poll(() => page.locator("#message").textContent(), LONG).toContain("recorded");

    await page.getByRole("button", { name: "Sell" }).click();
    await page.getByLabel("Quantity of Tea").fill("2");
    await page.getByRole("button", { name: "Record sale" }).click();
    await expect.poll(() => page.locator("#message").textContent(), LONG).toMatch(/Sale \w+ recorded: total 5\.00/);
    await page.screenshot({ path: path.join(SCREENSHOTS, "till-sell.png") });

    await expect.poll(async () => (await entryRows(page)).map((r) => r.status).sort(), LONG).toEqual(["accepted", "accepted"]);
    const sale = (await entryRows(page)).find((r) => r.text.includes("sale"))!;
    const journal = await b.journal();
    expect(journal.get(sale.id)?.status).toBe("accepted");
    await expect.poll(() => page.locator("#pending").textContent(), LONG).toBe("All entries delivered");
    await page.screenshot({ path: path.join(SCREENSHOTS, "till-entries.png") });
  });
});
