/**
 * What the device command line can do: each command with its options, a one-line summary, an
 * example, and what it runs. A shop can be set up and run from these alone: enroll, items,
 * stock, sales, payments, voids, customers, and what the server decided.
 */
import { ClientError } from "../errors.js";
import { OFFLINE, int, need, str, type Options } from "./args.js";
import { sleep, withDevice, type Command } from "./context.js";
import { ENROLL, LINK_COMMANDS } from "./link-commands.js";
import { money } from "./output.js";

const ITEM: Options = { item: { type: "string", value: "ID", help: "the item's id (see: items)", required: true } };
const INVOICE: Options = { invoice: { type: "string", value: "ID", help: "the sale's id (see: invoices)", required: true } };

function itemText(i: { id: string; name: string; price: number; active: boolean }, stock?: number): string {
  return `${i.id}  ${i.name}  ${money(i.price)}${stock === undefined ? "" : `  stock ${stock}`}${i.active ? "" : "  (inactive)"}`;
}

function entryText(e: { id: string; kind: string }, extra = ""): string {
  return `recorded ${e.kind} ${e.id}${extra} (pending until the server decides; see: verdicts)`;
}

export const COMMANDS: Command[] = [
  ENROLL,
  {
    name: "items",
    summary: "list the catalog's items with their provisional stock",
    options: { ...OFFLINE },
    example: "npm run device -- items --data ./till-1",
    run: (ctx) =>
      withDevice(ctx, async (d) => {
        const stock = d.provisional().stock;
        const items = [...d.items()].sort((a, b) => a.name.localeCompare(b.name));
        if (items.length === 0) ctx.out.say("no items yet (add one: npm run device -- item add --help)");
        for (const i of items) ctx.out.record({ ...i, stock: stock[i.id] ?? 0 }, itemText(i, stock[i.id] ?? 0));
      }),
  },
  {
    name: "item add",
    summary: "add an item to the catalog",
    options: {
      name: { type: "string", value: "NAME", help: "what the item is called", required: true },
      price: { type: "string", value: "CENTS", help: "unit price in minor units (350 = 3.50)", required: true },
      unit: { type: "string", value: "UNIT", help: "unit of sale (default: piece)" },
      description: { type: "string", value: "TEXT", help: "a longer description" },
      ...OFFLINE,
    },
    example: 'npm run device -- item add --data ./till-1 --name "Green tea" --price 350',
    run: (ctx) =>
      withDevice(ctx, async (d) => {
        const v = ctx.values;
        const unit = str(v, "unit");
        const description = str(v, "description");
        const item = await d.catalogEditor.addItem({ name: need(v, "name"), price: int(v, "price"), ...(unit ? { unit } : {}), ...(description ? { description } : {}) });
        ctx.out.record({ ...item }, `added ${itemText(item)}`);
      }),
  },
  ...(
    [
      ["reprice", "change an item's price", { price: { type: "string", value: "CENTS", help: "new unit price in minor units", required: true } }],
      ["rename", "change an item's name", { name: { type: "string", value: "NAME", help: "the new name", required: true } }],
      ["deactivate", "stop selling an item (it stays in past sales)", {}],
      ["activate", "sell an inactive item again", {}],
    ] as const
  ).map(
    ([verb, summary, extra]): Command => ({
      name: `item ${verb}`,
      summary,
      options: { ...ITEM, ...extra, ...OFFLINE },
      example: `npm run device -- item ${verb} --data ./till-1 --item <id>${verb === "reprice" ? " --price 400" : verb === "rename" ? ' --name "Jasmine tea"' : ""}`,
      run: (ctx) =>
        withDevice(ctx, async (d) => {
          const id = need(ctx.values, "item");
          const e = d.catalogEditor;
          const item =
            verb === "reprice" ? await e.repriceItem(id, int(ctx.values, "price"))
            : verb === "rename" ? await e.renameItem(id, need(ctx.values, "name"))
            : verb === "deactivate" ? await e.deactivateItem(id)
            : await e.activateItem(id);
          ctx.out.record({ ...item }, itemText(item));
        }),
    }),
  ),
  {
    name: "stock",
    summary: "show provisional stock per item (authoritative figures plus undecided entries)",
    options: { ...OFFLINE },
    example: "npm run device -- stock --data ./till-1",
    run: (ctx) =>
      withDevice(ctx, async (d) => {
        const stock = d.provisional().stock;
        for (const i of [...d.items()].sort((a, b) => a.name.localeCompare(b.name))) {
          ctx.out.record({ item: i.id, name: i.name, stock: stock[i.id] ?? 0 }, `${String(stock[i.id] ?? 0).padStart(6)}  ${i.name}  (${i.id})`);
        }
      }),
  },
  {
    name: "allowances",
    summary: "show this device's offline allowances: units left to sell safely, stock known, units at risk",
    options: { ...OFFLINE },
    example: "npm run device -- allowances --data ./till-1 --offline",
    run: (ctx) =>
      withDevice(ctx, async (d) => {
        for (const a of d.allowances()) {
          ctx.out.record({ ...a }, `${String(a.left).padStart(6)} left  ${a.item}  (granted ${a.granted}, stock known ${a.stockKnown}${a.atRisk > 0 ? `, at risk ${a.atRisk}` : ""})`);
        }
      }),
  },
  {
    name: "stock receive",
    summary: "record goods received into stock",
    options: { ...ITEM, qty: { type: "string", value: "N", help: "how many units arrived", required: true }, reason: { type: "string", value: "TEXT", help: 'why (default: "delivery")' }, ...OFFLINE },
    example: "npm run device -- stock receive --data ./till-1 --item <id> --qty 24",
    run: (ctx) =>
      withDevice(ctx, async (d) => {
        const qty = int(ctx.values, "qty");
        if (qty <= 0) throw new ClientError("invalid-input", "--qty must be positive (to correct a count use: stock adjust)");
        const e = await d.recordStock({ item: need(ctx.values, "item"), delta: qty, reason: str(ctx.values, "reason") ?? "delivery" });
        ctx.out.record({ ...e }, entryText(e, `: +${qty}`));
      }),
  },
  {
    name: "stock adjust",
    summary: "correct stock by a signed amount (breakage, a recount)",
    options: { ...ITEM, delta: { type: "string", value: "N", help: "units to add (positive) or remove (negative)", required: true }, reason: { type: "string", value: "TEXT", help: "why", required: true }, ...OFFLINE },
    example: 'npm run device -- stock adjust --data ./till-1 --item <id> --delta -2 --reason "broken"',
    run: (ctx) =>
      withDevice(ctx, async (d) => {
        const delta = int(ctx.values, "delta");
        const e = await d.recordStock({ item: need(ctx.values, "item"), delta, reason: need(ctx.values, "reason") });
        ctx.out.record({ ...e }, entryText(e, `: ${delta > 0 ? "+" : ""}${delta}`));
      }),
  },
  {
    name: "sale",
    summary: "record a sale of one item (a line with --name and --price also creates the item)",
    options: {
      ...ITEM,
      qty: { type: "string", value: "N", help: "quantity (default 1)" },
      price: { type: "string", value: "CENTS", help: "unit price (default: the catalog's)" },
      name: { type: "string", value: "NAME", help: "item name, to create the item with the sale" },
      paid: { type: "string", value: "CENTS", help: "paid now (default 0)" },
      customer: { type: "string", value: "ID", help: "the customer (see: customers)" },
      ...OFFLINE,
    },
    example: "npm run device -- sale --data ./till-1 --item <id> --qty 2 --paid 700",
    run: (ctx) =>
      withDevice(ctx, async (d) => {
        const v = ctx.values;
        const line: { item: string; quantity: number; price?: number; name?: string } = { item: need(v, "item"), quantity: int(v, "qty", 1) };
        if (str(v, "price") !== undefined) line.price = int(v, "price");
        const name = str(v, "name");
        if (name !== undefined) line.name = name;
        const customer = str(v, "customer");
        const e = await d.recordSale({ lines: [line], paid: int(v, "paid", 0), ...(customer ? { customer } : {}) });
        const atRisk = d.saleAtRisk(e);
        const risk = atRisk.length === 0 ? "" : `; AT RISK: beyond this device's offline allowance of ${atRisk.map((l) => l.item).join(", ")}, may be rejected when synced`;
        ctx.out.record({ ...e, ...(atRisk.length > 0 ? { atRisk } : {}) }, entryText(e, `: total ${money(e.total)}, paid ${money(e.paid)}${risk}`));
      }),
  },
  {
    name: "payment",
    summary: "record a payment against a sale",
    options: { ...INVOICE, amount: { type: "string", value: "CENTS", help: "amount received", required: true }, ...OFFLINE },
    example: "npm run device -- payment --data ./till-1 --invoice <id> --amount 500",
    run: (ctx) =>
      withDevice(ctx, async (d) => {
        const e = await d.recordPayment({ invoice: need(ctx.values, "invoice"), amount: int(ctx.values, "amount") });
        ctx.out.record({ ...e }, entryText(e, `: ${money(e.amount)}`));
      }),
  },
  {
    name: "void",
    summary: "cancel a sale (its stock comes back; money received is shown as due back)",
    options: { ...INVOICE, reason: { type: "string", value: "TEXT", help: "why", required: true }, ...OFFLINE },
    example: 'npm run device -- void --data ./till-1 --invoice <id> --reason "wrong item"',
    run: (ctx) =>
      withDevice(ctx, async (d) => {
        const e = await d.voidSale({ invoice: need(ctx.values, "invoice"), reason: need(ctx.values, "reason") });
        ctx.out.record({ ...e }, entryText(e));
      }),
  },
  {
    name: "invoices",
    summary: "list open sales with what is still owed",
    options: {
      all: { type: "boolean", help: "also finalized and void sales" },
      history: { type: "boolean", help: "first fetch the team's older history from the relay (a device holds only its working set: recent days and open invoices)" },
      ...OFFLINE,
    },
    example: "npm run device -- invoices --data ./till-1 --all --history",
    run: (ctx) =>
      withDevice(ctx, async (d) => {
        if (ctx.values.history === true) {
          if (ctx.values.offline === true) throw new ClientError("invalid-input", "--history fetches from the relay: drop --offline");
          await d.fetchHistory();
        }
        for (const inv of d.invoices()) {
          const p = inv.provisional;
          const status = inv.verdict?.status === "rejected" ? "rejected" : (p?.status ?? "pending");
          if (ctx.values.all !== true && status !== "open") continue;
          const row = { id: inv.id, at: inv.sale.at, device: inv.sale.device, total: inv.sale.total, paid: p?.paid ?? inv.sale.paid, outstanding: p?.outstanding ?? inv.sale.total - inv.sale.paid, status, customer: inv.sale.customer ?? null };
          ctx.out.record(row, `${row.id}  ${row.at.slice(0, 16)}  total ${money(row.total)}  owed ${money(row.outstanding)}  ${row.status}`);
        }
      }),
  },
  {
    name: "customers",
    summary: "list customers with their provisional balance",
    options: { ...OFFLINE },
    example: "npm run device -- customers --data ./till-1",
    run: (ctx) =>
      withDevice(ctx, async (d) => {
        const balances = d.provisional().customerBalances;
        for (const c of d.catalog().customers) {
          const balance = balances[c.id] ?? 0;
          ctx.out.record({ ...c, balance }, `${c.id}  ${c.name}${c.phone ? `  ${c.phone}` : ""}  owes ${money(balance)}`);
        }
      }),
  },
  {
    name: "customer add",
    summary: "add a customer",
    options: { name: { type: "string", value: "NAME", help: "the customer's name", required: true }, phone: { type: "string", value: "PHONE", help: "a phone number" }, ...OFFLINE },
    example: 'npm run device -- customer add --data ./till-1 --name "Ana Lopes" --phone 555-0100',
    run: (ctx) =>
      withDevice(ctx, async (d) => {
        const phone = str(ctx.values, "phone");
        const c = await d.catalogEditor.addCustomer({ name: need(ctx.values, "name"), ...(phone ? { phone } : {}) });
        ctx.out.record({ ...c }, `added customer ${c.id}  ${c.name}`);
      }),
  },
  {
    name: "bulk",
    summary: "record many sales and payments at once (load tests, demos)",
    options: { sales: { type: "string", value: "N", help: "sales to record (each creates its item)" }, payments: { type: "string", value: "N", help: "payments on this device's unpaid sales" }, ...OFFLINE },
    example: "npm run device -- bulk --data ./till-1 --sales 100 --payments 20 --offline",
    run: (ctx) =>
      withDevice(ctx, async (d) => {
        const sales = int(ctx.values, "sales", 0);
        const payments = int(ctx.values, "payments", 0);
        const started = Date.now();
        for (let i = 0; i < sales; i++) {
          // A line that names its item creates it and moves no stock: no stock setup needed.
          await d.recordSale({ lines: [{ item: `bulk-${globalThis.crypto.randomUUID()}`, quantity: 1, price: 1000, name: "Widget" }] });
        }
        // Payments go to this device's open sales, oldest first: they must have survived any
        // restart. Void or rejected sales take no payment.
        const paidAlready = new Set(d.payments().map((p) => p.invoice));
        const targets = d
          .invoices()
          .filter((inv) => inv.sale.device === d.deviceId && inv.sale.paid === 0 && !paidAlready.has(inv.id))
          .filter((inv) => inv.provisional?.status !== "void" && inv.verdict?.status !== "rejected")
          .sort((a, b) => a.sale.at.localeCompare(b.sale.at));
        if (targets.length < payments) throw new ClientError("invalid-input", `only ${targets.length} unpaid sales for ${payments} payments`);
        for (let i = 0; i < payments; i++) await d.recordPayment({ invoice: targets[i]!.id, amount: 100 });
        const row = { sales, payments, ms: Date.now() - started, entries: d.ownEntries().length, pending: d.pendingCount() };
        ctx.out.record(row, `recorded ${sales} sales and ${payments} payments in ${row.ms} ms; ${row.pending} not yet acknowledged`);
      }),
  },
  {
    name: "sync",
    summary: "go online and wait until the relay holds every entry of this device",
    options: { timeout: { type: "string", value: "MS", help: "give up after this long (default 120000)" } },
    example: "npm run device -- sync --data ./till-1",
    run: (ctx) =>
      withDevice(
        ctx,
        async (d) => {
          const started = Date.now();
          await d.whenSynced(int(ctx.values, "timeout", 120_000));
          const row = { synced: true, ms: Date.now() - started, entries: d.ownEntries().length, pending: d.pendingCount() };
          ctx.out.record(row, `synced ${row.entries} entries in ${row.ms} ms`);
        },
        false,
      ),
  },
  {
    name: "verdicts",
    summary: "show what the server decided on each of this device's entries",
    options: { wait: { type: "string", value: "MS", help: "wait up to this long for undecided entries" }, ...OFFLINE },
    example: "npm run device -- verdicts --data ./till-1 --wait 5000",
    run: (ctx) =>
      withDevice(ctx, async (d) => {
        const until = Date.now() + int(ctx.values, "wait", 0);
        while (Date.now() < until && d.ownEntries().some((e) => e.status === "undecided")) await sleep(200);
        for (const e of d.ownEntries()) {
          const row = { id: e.entry.id, kind: e.entry.kind, status: e.status, ...(e.reason ? { reason: e.reason } : {}) };
          ctx.out.record(row, `${row.id}  ${row.kind.padEnd(7)}  ${row.status}${row.reason ? `: ${row.reason}` : ""}`);
        }
      }),
  },
  {
    name: "status",
    summary: "online or not (and through which relay), entries recorded and not yet acknowledged",
    options: { ...OFFLINE },
    example: "npm run device -- status --data ./till-1",
    run: (ctx) =>
      withDevice(ctx, async (d) => {
        if (ctx.values.offline !== true) await sleep(1000);
        const row = { online: d.online, relay: d.relayUrl, pending: d.pendingCount(), entries: d.ownEntries().length, segment: d.currentSegment() ?? null };
        ctx.out.record(row, `${row.online ? `online through ${row.relay}` : "offline"}; ${row.entries} entries, ${row.pending} not yet acknowledged by the relay`);
      }),
  },
  {
    name: "catalog",
    summary: "the catalog's items, and fields two devices edited at once (each value and its device)",
    options: { ...OFFLINE },
    example: "npm run device -- catalog --data ./till-1",
    run: (ctx) =>
      withDevice(ctx, async (d) => {
        if (ctx.values.offline !== true) await sleep(1000);
        const items = d.items();
        const conflicts = d.conflicts();
        const text = [
          ...items.map((i) => itemText(i)),
          ...conflicts.map(
            (c) => `conflict: ${c.map} ${c.id} ${c.field}: ${c.values.map((v) => `${JSON.stringify(v.value)} by ${v.device ?? "?"}${v.shown ? " (shown)" : ""}`).join(" / ")}; a new edit settles it`,
          ),
        ].join("\n");
        ctx.out.record({ items, conflicts }, text);
      }),
  },
  {
    name: "checkpoint",
    summary: "export the signed journal checkpoints this device holds (for verify-journal --checkpoint)",
    options: { ...OFFLINE },
    example: "npm run device -- checkpoint --data ./till-1 > till-1-checkpoints.json",
    run: (ctx) =>
      withDevice(ctx, async (d) => {
        if (ctx.values.offline !== true) await sleep(1000);
        // One JSON line that `npm run verify-journal -- --checkpoint FILE` reads as it is, on a terminal too.
        const row = { team: d.team, device: d.deviceId, exportedAt: new Date().toISOString(), checkpoints: d.checkpoints() };
        ctx.out.record(row, JSON.stringify(row));
      }),
  },
  ...LINK_COMMANDS,
];
