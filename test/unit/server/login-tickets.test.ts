import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { issueLoginTicket, loginTicketId, loginTicketKey } from "../../../server/accounts/login-tickets.js";

describe("login tickets", () => {
  const key = loginTicketKey("-----BEGIN PRIVATE KEY-----\nnot a real one\n-----END PRIVATE KEY-----\n");

  it("are valid only for the team and username they were issued to, under the key that signed them", () => {
    const ticket = issueLoginTicket(key, "shop1", "erin");
    const id = loginTicketId(key, "shop1", "erin", ticket);
    expect(id).toBe(ticket.split(".")[0]);
    expect(loginTicketId(key, "shop1", "dave", ticket)).toBeNull();
    expect(loginTicketId(key, "shop2", "erin", ticket)).toBeNull();
    expect(loginTicketId(randomBytes(32), "shop1", "erin", ticket)).toBeNull();
    expect(issueLoginTicket(key, "shop1", "erin")).not.toBe(ticket);
  });

  it("refuse anything altered or malformed", () => {
    const ticket = issueLoginTicket(key, "shop1", "erin");
    const [nonce, mac] = ticket.split(".") as [string, string];
    for (const bad of [`${nonce}x.${mac}`, `${nonce}.${mac.slice(0, -2)}`, `.${mac}`, nonce, "", "a".repeat(300), 42, null, undefined, { ticket }]) {
      expect(loginTicketId(key, "shop1", "erin", bad)).toBeNull();
    }
  });
});
