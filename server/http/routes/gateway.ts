/** The classic batch-sync endpoints (../shared/reference/classic-batch-sync-api.md). */
import type { Claims } from "../../../shared/auth/claims.js";
import type { ApiDeps } from "../deps.js";
import type { Route } from "../route.js";
import { errors } from "../schemas.js";

/** Writers of the team: auditors read only, services have no team to write to. */
const writer = (c: Claims): boolean => c.role === "member" || c.role === "admin";

const rows = { type: "array", items: { type: "object" } };
const counts = { type: "object", required: ["itemsCreated", "itemsUpdated", "itemsDeleted", "invoicesCreated", "paymentsCreated"], additionalProperties: { type: "integer" } };
const idLists = { type: "object", required: ["itemsCreated", "itemsUpdated", "itemsDeleted", "invoicesCreated", "paymentsCreated"], additionalProperties: { type: "array", items: { type: "string" } } };
const Item = {
  type: "object",
  required: ["_id", "productId", "name", "price", "stock", "unit", "groupId", "dealerIds", "isActive"],
  properties: {
    _id: { type: "string" }, productId: { type: "string" }, name: { type: "string" }, price: { type: "integer" }, stock: { type: "integer" },
    unit: { type: "string" }, groupId: { type: ["string", "null"] }, description: { type: "string" }, dealerIds: { type: "array", items: { type: "string" } },
    isActive: { type: "boolean" },
  },
};
const SyncOk = {
  type: "object",
  required: ["success", "message", "summary", "synced", "data"],
  properties: {
    success: { const: true },
    message: { type: "string" },
    summary: counts,
    synced: idLists,
    data: {
      type: "object",
      required: ["itemGroups", "items", "clientCustomers", "invoices", "payments", "purchaseHistory"],
      properties: { itemGroups: rows, items: { type: "array", items: Item }, clientCustomers: rows, invoices: rows, payments: rows, purchaseHistory: rows },
    },
  },
};
const SyncConflict = {
  type: "object",
  required: ["success", "message", "error"],
  properties: {
    success: { const: false }, message: { type: "string" }, error: { type: "object" },
    verdicts: { type: "array", items: { type: "object", required: ["id", "status"] } },
  },
};

export function gatewayRoutes(deps: ApiDeps): Route[] {
  return [
    {
      method: "post",
      path: "/readytosync",
      summary: "Check that the token is valid before a sync",
      tag: "classic sync",
      classic: true,
      authorize: writer,
      responses: {
        200: { description: "ready", schema: { type: "object", required: ["success", "message", "clientId"], properties: { success: { const: true }, message: { const: "OK" }, clientId: { type: "string" } } } },
        ...errors(401, 403),
      },
      async handle({ claims }) {
        return { status: 200, body: { success: true, message: "OK", clientId: claims!.team } };
      },
    },
    {
      method: "post",
      path: "/sync",
      summary: "Apply a batch of offline operations all or nothing, and return the full dataset",
      tag: "classic sync",
      classic: true,
      headers: { "X-Idempotency-Key": "A retry with the same key returns the first response byte for byte" },
      body: {
        type: "object",
        properties: {
          item: { type: "object", properties: { create: { type: "array" }, update: { type: "array" }, delete: { type: "array", items: { type: "string" } } } },
          invoice: { type: "object", properties: { create: { type: "array" } } },
          payment: { type: "object", properties: { create: { type: "array" } } },
        },
      },
      authorize: writer,
      responses: {
        200: { description: "every operation accepted", schema: SyncOk },
        409: { description: "refused by the authoritative state (or a device's concurrent entry won): the materializer rejected every entry of the batch, and nothing of it counts (its entries are journaled as rejected)", schema: SyncConflict },
        ...errors(400, 401, 403, 404, 413, 422, 503, 504),
      },
      async handle({ claims, body, headers }) {
        const raw = headers["x-idempotency-key"];
        const key = typeof raw === "string" ? raw : undefined;
        const answer = await deps.gateway.sync(claims!, body, key);
        return { status: answer.status, raw: answer.raw };
      },
    },
  ];
}
