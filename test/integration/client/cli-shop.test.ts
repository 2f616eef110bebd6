/**
 * Issue 15: a shop set up and run from the device command line alone (real child processes,
 * JSON output as a script reads it): enroll, add and reprice items, receive stock, add a
 * customer, sell, void, pay, list stock and open invoices; help and mistakes answered clearly.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./cli-process.js";
import { createTeam, removeTmpDirs, startTestRelay, tmpDir, type TestRelay, type TestTeam } from "./helpers.js";

let relay: TestRelay;
let team: TestTeam;
let data: string;

beforeAll(async () => {
  relay = await startTestRelay();
  team = await createTeam(relay, "shop-cli");
  data = await tmpDir("cli-shop");
  await team.enroll("till-1");
  const keyFile = path.join(data, "team.pub");
  await writeFile(keyFile, relay.service.tokens.publicKeyPem);
  const enroll = await runCli(["enroll", "--data", data, "--server", relay.service.url, "--token", team.token("till-1"), "--device", "till-1", "--root", team.rootUrl, "--public-key", keyFile]);
  expect(enroll.stderr).toBe("");
  expect(enroll.lines[0]).toMatchObject({ enrolled: true, team: "shop-cli", device: "till-1" });
});

afterAll(async () => {
  await relay?.close();
  await removeTmpDirs();
});

async function ok(args: string[]): Promise<Record<string, unknown>[]> {
  const r = await runCli([...args.slice(0, args[1]?.startsWith("--") ? 1 : 2), "--data", data, "--json", ...args.slice(args[1]?.startsWith("--") ? 1 : 2)]);
  expect(r.stderr, `${args.join(" ")}`).toBe("");
  // Nothing but our output: automerge-repo's "error waiting for ..." lines no longer leak at close.
  expect(r.stdout.split("\n").filter((l) => l !== "" && !l.startsWith("{"))).toEqual([]);
  expect(r.code).toBe(0);
  return r.lines;
}

describe("the device command line", () => {
  it("sets up a catalog, takes stock in, sells, voids and pays, and shows stock and open invoices", async () => {
    const [tea] = await ok(["item", "add", "--name", "Green tea", "--price", "350", "--offline"]);
    expect(tea).toMatchObject({ name: "Green tea", price: 350, active: true });
    const teaId = String(tea!.id);
    const [repriced] = await ok(["item", "reprice", "--item", teaId, "--price", "400", "--offline"]);
    expect(repriced).toMatchObject({ id: teaId, price: 400 });
    const [received] = await ok(["stock", "receive", "--item", teaId, "--qty", "10", "--offline"]);
    expect(received).toMatchObject({ kind: "stock", item: teaId, delta: 10, reason: "delivery" });
    const [customer] = await ok(["customer", "add", "--name", "Ana Lopes", "--phone", "555-0100", "--offline"]);
    const [sale1] = await ok(["sale", "--item", teaId, "--qty", "3", "--paid", "200", "--customer", String(customer!.id), "--offline"]);
    expect(sale1).toMatchObject({ kind: "sale", total: 1200, paid: 200 });
    const [sale2] = await ok(["sale", "--item", teaId, "--qty", "2", "--offline"]);
    await ok(["void", "--invoice", String(sale2!.id), "--reason", "wrong item", "--offline"]);

    const stock = await ok(["stock", "--offline"]);
    expect(stock).toEqual([{ item: teaId, name: "Green tea", stock: 7 }]);
    const open = await ok(["invoices", "--offline"]);
    expect(open.map((r) => r.id)).toEqual([sale1!.id]);
    expect(open[0]).toMatchObject({ total: 1200, paid: 200, outstanding: 1000 });
    const [paid] = await ok(["payment", "--invoice", String(sale1!.id), "--amount", "1000", "--offline"]);
    expect(paid).toMatchObject({ kind: "payment", amount: 1000 });
    expect(await ok(["invoices", "--offline"])).toEqual([]);
    const customers = await ok(["customers", "--offline"]);
    expect(customers).toEqual([expect.objectContaining({ name: "Ana Lopes", phone: "555-0100", balance: 0 })]);

    // With a void among this device's sales, bulk payments go to the sales that can take one.
    await ok(["bulk", "--sales", "2", "--offline"]);
    const [bulk] = await ok(["bulk", "--payments", "2", "--offline"]);
    expect(bulk).toMatchObject({ payments: 2 });
  }, 180_000);

  it("explains itself: --help lists commands, each command has help, mistakes name the fix", async () => {
    const help = await runCli(["--help"]);
    expect(help.code).toBe(0);
    for (const command of ["enroll", "item add", "item reprice", "stock receive", "sale", "payment", "void", "customer add", "invoices", "verdicts"]) {
      expect(help.stdout).toContain(`  ${command} `);
    }
    const saleHelp = await runCli(["sale", "--help"]);
    expect(saleHelp.code).toBe(0);
    expect(saleHelp.stdout).toContain("usage: npm run device -- sale --data DIR --item ID");
    expect(saleHelp.stdout).toContain("example: npm run device -- sale");
    const unknownFlag = await runCli(["sale", "--data", data, "--quantity", "2"]);
    expect(unknownFlag.code).toBe(1);
    expect(unknownFlag.stderr).toContain("Unknown option '--quantity'");
    expect(unknownFlag.stderr).toContain("npm run device -- sale --help");
    const half = await runCli(["item", "--data", data]);
    expect(half.code).toBe(1);
    expect(half.stderr).toContain("did you mean: item add");
    const missing = await runCli(["stock", "receive", "--data", data, "--item", "x"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("--qty is required");
  }, 60_000);
});
