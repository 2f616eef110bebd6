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

  it("works offline: a reload without network shows the till, sells, and delivers once online", async () => {
    const context = await b.context();
    const page = await context.newPage();
    await signInTill(page, b.shop.team.team);
    await expect.poll(() => page.locator("#connection").textContent(), LONG).toBe("Online");
    // The service worker must control the page before the network goes.
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null, undefined, LONG);
    await page.getByRole("button", { name: "Sell" }).click();
    await page.getByLabel("Quantity of Tea").waitFor(LONG);

    await context.setOffline(true);
    await expect.poll(() => page.locator("#connection").textContent(), LONG).toMatch(/^Offline/);
    await page.reload();
    await page.getByRole("navigation", { name: "Screens" }).waitFor(LONG);
    for (let i = 0; i < 2; i++) {
      await page.getByLabel("Quantity of Tea").fill("1");
      await page.getByRole("button", { name: "Record sale" }).click();
      await expect.poll(() => page.locator("#message").textContent(), LONG).toMatch(/Sale \w+ recorded: total 2\.50/);
      await page.locator("#message").evaluate((el) => (el.textContent = ""));
    }
    await expect.poll(() => page.locator("#pending").textContent(), LONG).toBe("2 not yet acknowledged");
    // Recorded means kept: another reload, still offline, finds both.
    await page.reload();
    const offline = await entryRows(page);
    expect(offline.map((r) => r.status)).toEqual(["undecided", "undecided"]);
    await page.screenshot({ path: path.join(SCREENSHOTS, "till-offline.png") });

    await context.setOffline(false);
    await expect.poll(async () => (await entryRows(page)).map((r) => r.status), LONG).toEqual(["accepted", "accepted"]);
    const journal = await b.journal();
    for (const r of offline) expect(journal.get(r.id)?.status).toBe("accepted");
    await expect.poll(() => page.locator("#pending").textContent(), LONG).toBe("All entries delivered");
  });

  it("an oversell made offline comes back rejected, with a notice and the reason", async () => {
    const context = await b.context({ width: 390, height: 844 });
    const page = await context.newPage();
    await signInTill(page, b.shop.team.team);
    await page.getByRole("button", { name: "Sell" }).click();
    // One Tea left after the sales above.
    await page.getByText("Tea · 2.50 · 1 in stock").waitFor(LONG);

    await context.setOffline(true);
    await expect.poll(() => page.locator("#connection").textContent(), LONG).toMatch(/^Offline/);
    await page.getByLabel("Quantity of Tea").fill("1");
    await page.getByRole("button", { name: "Record sale" }).click();
    await expect.poll(() => page.locator("#message").textContent(), LONG).toMatch(/recorded/);

    // Meanwhile another till sells the last one (the classic gateway, online).
    const items = await b.shop.call<{ rows: Array<{ id: string; name: string }> }>("GET", "/items", { token: b.shop.member });
    const tea = items.body.rows.find((r) => r.name === "Tea")!;
    const other = await b.shop.call<{ synced: { invoicesCreated: string[] } }>("POST", "/sync", {
      token: b.shop.member,
      body: { invoice: { create: [{ products: [{ productId: tea.id, quantity: 1 }], totalTax: 0, totalDiscount: 0, paidAmount: 0 }] } },
    });
    expect(other.status, other.raw).toBe(200);
    const otherId = other.body.synced.invoicesCreated[0]!;
    await expect.poll(async () => (await b.journal()).get(otherId)?.status, LONG).toBe("accepted");

    await context.setOffline(false);
    const notice = page.locator("#notices .notice");
    await notice.waitFor(LONG);
    expect(await notice.textContent()).toMatch(/A sale made offline was rejected.*insufficient stock/);
    await page.screenshot({ path: path.join(SCREENSHOTS, "till-rejected-phone.png") });
    const rejected = (await entryRows(page)).filter((r) => r.status === "rejected");
    expect(rejected).toHaveLength(1);
    expect((await b.journal()).get(rejected[0]!.id)?.reason).toMatch(/insufficient stock/);
    // Dismissed stays dismissed, even after a reload.
    await notice.getByRole("button", { name: "Dismiss" }).click();
    await page.reload();
    await page.getByRole("navigation", { name: "Screens" }).waitFor(LONG);
    // Drawn together with the notices: once it shows, so would a notice.
    await expect.poll(() => page.locator("#pending").textContent(), LONG).toBe("All entries delivered");
    expect(await page.locator("#notices .notice").count()).toBe(0);
  });
});
