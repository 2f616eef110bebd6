/**
 * The browser pages in a real Chromium. The till: signed in with a password, selling online and
 * offline (the browser's offline emulation, a reload served by the service worker), and the
 * notice when a sale made offline comes back rejected. The audit view: the journal with that
 * rejection, verified in the browser, read with GET requests only, and refused to a member.
 * Each check is what the person sees or what MongoDB's journal holds. One shop for the file:
 * later tests build on the ledger earlier ones made.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Page } from "playwright-core";
import { enrolmentLink } from "../../../shared/enrolment-link.js";
import { CHROMIUM, chromiumInstalled, SCREENSHOTS, signInTill, startBrowserShop, type BrowserShop } from "./harness.js";

if (!chromiumInstalled()) console.warn(`browser tests skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or CHROMIUM_PATH)`);

let b: BrowserShop;
beforeAll(async () => {
  b = await startBrowserShop();
}, 120_000);
afterAll(async () => {
  await b?.close();
});

/** Generous for a busy machine, and under the test's own limit, so a failed wait says what it waited for. */
const LONG = { timeout: 30_000 };

async function entryRows(page: Page): Promise<Array<{ id: string; kind: string; status: string; text: string }>> {
  await page.getByRole("button", { name: "Entries" }).click();
  return page.locator("tr[data-entry]").evaluateAll((rows) =>
    rows.map((r) => ({ id: r.getAttribute("data-entry") ?? "", kind: r.children[1]?.textContent ?? "", status: r.getAttribute("data-status") ?? "", text: r.textContent ?? "" })),
  );
}

describe("serving the pages", () => {
  it("answers each file with its content type and the pages' CSP, and nothing outside them", async () => {
    const base = b.shop.relay.service.url;
    const get = (p: string) => fetch(base + p, { redirect: "manual" });
    const types: Record<string, string> = {
      "/app/": "text/html", "/app/till.js": "text/javascript", "/app/sw.js": "text/javascript", "/app/style.css": "text/css",
      "/app/automerge.wasm": "application/wasm", "/audit/": "text/html", "/audit/audit.js": "text/javascript",
    };
    for (const [p, type] of Object.entries(types)) {
      const res = await get(p);
      expect(res.status, p).toBe(200);
      expect(res.headers.get("content-type"), p).toContain(type);
      expect(res.headers.get("content-security-policy"), p).toContain("script-src 'self' 'wasm-unsafe-eval'");
      expect(res.headers.get("x-content-type-options"), p).toBe("nosniff");
    }
    expect((await get("/app/sw.js")).headers.get("service-worker-allowed")).toBe("/app/");
    const bare = await get("/app");
    expect([bare.status, bare.headers.get("location")]).toEqual([301, "/app/"]);
    for (const p of ["/app/%2e%2e/%2e%2e/package.json", "/app/..%2f..%2fpackage.json", "/audit/nothing.js", "/app/.tsbuildinfo"]) {
      const res = await get(p);
      expect(res.status, p).toBeGreaterThanOrEqual(400);
      expect(await res.text(), p).not.toContain("ledger-sync");
    }
    // The bundles carry no key and no token: everything secret comes at sign-in.
    for (const p of ["/app/till.js", "/audit/audit.js", "/app/sw.js"]) {
      const text = await (await get(p)).text();
      expect(text, p).not.toMatch(/PRIVATE KEY|eyJhbGci/);
    }
  });
});

describe.skipIf(!chromiumInstalled())("web till", () => {
  it("signs in, sells online, and shows the verdict the journal holds", async () => {
    const page = await (await b.context()).newPage();
    page.on("console", (m) => console.log(`[page] ${m.type()} ${m.text()}`));
    page.on("pageerror", (e) => console.log(`[page error] ${e.message}`));
    await signInTill(page, b.shop.team.team);
    await expect.poll(() => page.locator("#connection").textContent(), LONG).toBe("Online");

    await page.getByRole("button", { name: "Catalog" }).click();
    await page.getByLabel("Item name").fill("Tea");
    await page.getByLabel("Price", { exact: true }).fill("2.50");
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
    const sale = (await entryRows(page)).find((r) => r.kind === "sale")!;
    const journal = await b.journal();
    expect(journal.get(sale.id)?.status).toBe("accepted");
    await expect.poll(() => page.locator("#pending").textContent(), LONG).toBe("All entries delivered");
    await page.screenshot({ path: path.join(SCREENSHOTS, "till-entries.png") });
  });

  it("takes a payment on an open invoice and voids a sale, each decided", async () => {
    const page = await (await b.context()).newPage();
    await signInTill(page, b.shop.team.team);
    await page.getByRole("button", { name: "Catalog" }).click();
    await page.getByLabel("Customer name").fill("Asha");
    await page.getByRole("button", { name: "Add customer" }).click();
    await expect.poll(() => page.locator("#message").textContent(), LONG).toBe("Customer Asha added");
    await page.getByRole("button", { name: "Sell" }).click();
    await page.getByLabel("Quantity of Tea").fill("1");
    await page.getByLabel("Customer").selectOption({ label: "Asha" });
    await page.getByLabel("Paid now").fill("0");
    await page.getByRole("button", { name: "Record sale" }).click();
    await expect.poll(() => page.locator("#message").textContent(), LONG).toMatch(/total 2\.50, paid 0\.00/);

    await page.getByRole("button", { name: "Payment" }).click();
    expect(await page.getByLabel("Open invoice").locator("option").allTextContents()).toEqual([expect.stringMatching(/Asha .* owes 2\.50$/)]);
    await page.getByLabel("Amount").fill("1.00");
    await page.getByRole("button", { name: "Record payment" }).click();
    await expect.poll(() => page.locator("#message").textContent(), LONG).toMatch(/Payment of 1\.00 on \w+ recorded/);

    await page.getByRole("button", { name: "Void" }).click();
    expect(await page.getByLabel("Invoice").locator("option").allTextContents()).toEqual([expect.stringMatching(/owes 1\.50$/)]);
    await page.getByLabel("Reason").fill("customer changed their mind");
    await page.getByRole("button", { name: "Void the sale" }).click();
    await expect.poll(() => page.locator("#message").textContent(), LONG).toMatch(/voided/);

    await expect.poll(async () => (await entryRows(page)).map((r) => `${r.kind}:${r.status}`).sort(), LONG).toEqual(
      ["payment:accepted", "sale:accepted", "void:accepted"],
    );
    const journal = await b.journal();
    for (const r of await entryRows(page)) expect(journal.get(r.id)?.status, r.text).toBe("accepted");
    // The void gave the unit back: three Tea, as before this sale.
    await page.getByRole("button", { name: "Sell" }).click();
    await page.getByText("Tea · 2.50 · 3 in stock").waitFor(LONG);
    // A second tab of the same browser does not open the same device twice.
    const second = await page.context().newPage();
    await second.goto("/app/");
    await second.locator("#other-tab").waitFor(LONG);
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

describe.skipIf(!chromiumInstalled())("two tablets", () => {
  it("one enrolled by link, one by password, edit the catalog at once offline and converge", async () => {
    const enrolled = await b.shop.call<Record<string, string>>("POST", `/teams/${b.shop.team.team}/devices`, { token: b.shop.adminToken, body: { device: "tab-9", user: "bob" } });
    expect(enrolled.status, enrolled.raw).toBe(201);
    const { team, device, user, token, rootUrl, publicKey } = enrolled.body;
    const ctxA = await b.context();
    const a = await ctxA.newPage();
    await a.goto(enrolmentLink(b.shop.relay.service.url, { team, device, user, token, rootUrl, publicKey }));
    await a.getByRole("navigation", { name: "Screens" }).waitFor(LONG);
    expect(await a.locator("header .who").textContent()).toBe(`${team} · bob · tab-9`);
    expect(new URL(a.url()).hash).toBe("");
    const ctxB = await b.context({ width: 768, height: 1024 });
    const t = await ctxB.newPage();
    await signInTill(t, b.shop.team.team);
    for (const p of [a, t]) {
      await p.getByRole("button", { name: "Catalog" }).click();
      await p.getByRole("cell", { name: "Tea", exact: true }).waitFor(LONG);
    }

    await ctxA.setOffline(true);
    await ctxB.setOffline(true);
    await a.getByLabel("New price of Tea").fill("3.10");
    await a.getByRole("button", { name: "Reprice" }).click();
    await t.getByLabel("Item name").fill("Scone");
    await t.getByLabel("Price", { exact: true }).fill("1.20");
    await t.getByRole("button", { name: "Add item" }).click();
    await expect.poll(() => t.locator("#message").textContent(), LONG).toContain("Item Scone added");
    await ctxA.setOffline(false);
    await ctxB.setOffline(false);

    const catalog = (p: typeof a) => p.locator("tbody tr").evaluateAll((rows) => rows.map((r) => [r.children[0]?.textContent, (r.querySelector("input") as HTMLInputElement | null)?.value]));
    const want = [["Scone", "1.20"], ["Tea", "3.10"]];
    await expect.poll(() => catalog(a), LONG).toEqual(want);
    await expect.poll(() => catalog(t), LONG).toEqual(want);
    await t.screenshot({ path: path.join(SCREENSHOTS, "till-catalog-tablet.png") });
  });
});

describe.skipIf(!chromiumInstalled())("an expired sign-in", () => {
  it("keeps recording, says so, and delivers after signing in again as the same device", async () => {
    const page = await (await b.context()).newPage();
    await signInTill(page, b.shop.team.team);
    await expect.poll(() => page.locator("#connection").textContent(), LONG).toBe("Online");
    const who = await page.locator("header .who").textContent();
    const expired = b.shop.relay.token({ sub: "bob", team: b.shop.team.team, role: "member", exp: Math.floor(Date.now() / 1000) - 60 });
    await page.evaluate((t) => {
      const s = JSON.parse(localStorage.getItem("ledger-sync.till")!) as Record<string, string>;
      localStorage.setItem("ledger-sync.till", JSON.stringify({ ...s, token: t }));
    }, expired);
    await page.reload();
    await page.locator("#expired").waitFor(LONG);
    expect(await page.locator("#connection").textContent()).toBe("Offline (sign-in expired)");

    await page.getByRole("button", { name: "Receive stock" }).click();
    await page.getByLabel("Item").selectOption({ label: "Scone (1.20)" });
    await page.getByLabel("Quantity received").fill("2");
    await page.getByRole("button", { name: "Record receipt" }).click();
    await expect.poll(() => page.locator("#pending").textContent(), LONG).toBe("1 not yet acknowledged");

    await page.locator("#expired").getByRole("button", { name: "Sign in again" }).click();
    await page.getByLabel("Password").waitFor(LONG);
    await page.getByLabel("Team").fill(b.shop.team.team);
    await page.getByLabel("User").fill("bob");
    await page.getByLabel("Password").fill("pw-bob-12345");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("navigation", { name: "Screens" }).waitFor(LONG);
    expect(await page.locator("header .who").textContent()).toBe(who);
    await expect.poll(async () => (await entryRows(page)).filter((r) => r.kind === "stock").map((r) => r.status), LONG).toEqual(["accepted"]);
  });
});

describe.skipIf(!chromiumInstalled())("audit view", () => {
  it("lists the journal with the rejected sale, verifies it, links figures to records, and never writes", async () => {
    const page = await (await b.context()).newPage();
    const calls: string[] = [];
    page.on("request", (r) => {
      if (new URL(r.url()).pathname.startsWith("/api/")) calls.push(`${r.method()} ${new URL(r.url()).pathname}`);
    });
    await page.goto("/audit/");
    await page.getByLabel("Team").fill(b.shop.team.team);
    await page.getByLabel("User").fill("carol");
    await page.getByLabel("Password").fill("pw-carol-12345");
    await page.getByRole("button", { name: "Sign in" }).click();
    const journal = await b.journal();
    await expect.poll(() => page.locator("#verified").textContent(), LONG).toBe(`Journal verified: ${journal.size} records`);

    const rejected = [...journal.entries()].filter(([, r]) => r.status === "rejected");
    expect(rejected).toHaveLength(1);
    const row = page.locator(`tr[data-seq="${rejected[0]![1].seq}"]`);
    expect(await row.getAttribute("data-status")).toBe("rejected");
    expect(await row.textContent()).toMatch(/insufficient stock/);
    await page.getByLabel("Verdict").selectOption("rejected");
    await expect.poll(() => page.locator("tr[data-seq]").count(), LONG).toBe(1);
    await page.screenshot({ path: path.join(SCREENSHOTS, "audit-journal.png") });

    // A day's figure opens that day's records.
    await page.getByRole("button", { name: "Daily summaries" }).click();
    const day = new Date().toISOString().slice(0, 10);
    await page.getByRole("button", { name: day }).click();
    await expect.poll(() => page.locator("tr[data-seq]").count(), LONG).toBe(journal.size);

    await page.getByRole("button", { name: "Verification" }).click();
    expect(await page.locator("#chain").textContent()).toMatch(/^Hash chain intact/);
    const results = await page.locator("td .result-ok, td .result-bad").allTextContents();
    expect(results.length).toBeGreaterThan(0);
    expect(new Set(results)).toEqual(new Set(["signature valid, record matches"]));

    // Read-only: one login, then reads only; no field on the page that could send anything else.
    expect(calls.filter((c) => !c.startsWith("GET "))).toEqual(["POST /api/auth/login"]);
  });

  it("refuses a member's token", async () => {
    const page = await (await b.context()).newPage();
    const calls: string[] = [];
    page.on("request", (r) => {
      if (new URL(r.url()).pathname.startsWith("/api/")) calls.push(r.url());
    });
    await page.goto(`/audit/#token=${b.shop.member}`);
    await expect.poll(() => page.getByRole("alert").textContent(), LONG).toMatch(/The audit view is for auditors: this token is a member's/);
    expect(calls).toEqual([]);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
  });
});

describe.skipIf(!chromiumInstalled())("hostile names", () => {
  it("an item named like markup shows as text on the till and in the audit view, and never runs", async () => {
    const name = `<img src=x onerror="window.__pwned=1">`;
    const made = await b.shop.call("POST", "/sync", { token: b.shop.member, body: { item: { create: [{ name, price: 100, stock: 0, unit: "nos" }] } } });
    expect(made.status, made.raw).toBe(200);
    const page = await (await b.context()).newPage();
    await signInTill(page, b.shop.team.team);
    await page.getByRole("button", { name: "Catalog" }).click();
    await page.getByRole("cell", { name, exact: true }).waitFor(LONG);
    const audit = await (await b.context()).newPage();
    await audit.goto(`/audit/#token=${b.shop.auditor}`);
    await audit.getByRole("button", { name: "Stock" }).click();
    await audit.getByRole("button", { name, exact: true }).waitFor(LONG);
    for (const p of [page, audit]) {
      expect(await p.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
      expect(await p.locator("img").count()).toBe(0);
    }
  });
});
