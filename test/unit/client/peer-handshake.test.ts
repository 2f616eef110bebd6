/**
 * The peer handshake and its sealed channel, two devices in one process over an in-memory pair of
 * frame queues (no sockets): who is accepted, what each refusal says locally, that a recorded
 * frame does not verify in another session, and that sealed frames open only in order and intact.
 */
import { generateKeyPairSync } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { connectorHandshake, FrameQueue, listenerHandshake, type HandshakeChannel, type PeerCredentials, type PeerPolicy } from "../../../client/peer/handshake.js";
import { generateDeviceKey, normalizePairingCode, pairingCode, type DeviceKey } from "../../../client/peer/keys.js";
import { parsePeerAddress } from "../../../client/peer/links.js";
import { createTokenService, type CertifyClaims, type TokenService } from "../../../server/auth/tokens.js";

let service: TokenService;
let policy: PeerPolicy;

function keys(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return { privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(), publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString() };
}

async function creds(claims: Partial<CertifyClaims> & { device: string }, key?: DeviceKey, by = service): Promise<PeerCredentials> {
  const k = key ?? (await generateDeviceKey()).key;
  const full: CertifyClaims = { sub: `clerk-${claims.device}`, team: "shop", role: "member", ...claims };
  return { key: k, certificate: by.certify(full, k.publicJwk).certificate };
}

/** Two channels joined back to back; `tap` sees (and may replace) every frame in flight. */
function pair(tap?: (from: "c" | "l", frame: string) => string): { c: HandshakeChannel; l: HandshakeChannel; hangUp(): void } {
  const toC = new FrameQueue(5000);
  const toL = new FrameQueue(5000);
  return {
    c: { send: (t) => toL.push(tap ? tap("c", t) : t), receive: () => toC.receive() },
    l: { send: (t) => toC.push(tap ? tap("l", t) : t), receive: () => toL.receive() },
    // What a socket close does: the side still waiting hears that the other hung up.
    hangUp: () => {
      toC.fail(new Error("hung up"));
      toL.fail(new Error("hung up"));
    },
  };
}

async function run(c: PeerCredentials, l: PeerCredentials, cPolicy = policy, lPolicy = policy, tap?: (from: "c" | "l", frame: string) => string) {
  const ch = pair(tap);
  const [cr, lr] = await Promise.allSettled([
    connectorHandshake(ch.c, c, cPolicy).catch((err: unknown) => { ch.hangUp(); throw err; }),
    listenerHandshake(ch.l, l, lPolicy).catch((err: unknown) => { ch.hangUp(); throw err; }),
  ]);
  const reason = (r: PromiseSettledResult<unknown>): string | undefined => (r.status === "rejected" ? String((r.reason as Error).message) : undefined);
  return { cr, lr, cReason: reason(cr), lReason: reason(lr) };
}

beforeAll(() => {
  service = createTokenService(keys(), { issuer: "ledger-sync", audience: "ledger-sync", ttlSeconds: 3600 });
  policy = { trust: { publicKeyPem: service.publicKeyPem, issuer: "ledger-sync", audience: "ledger-sync" }, team: "shop" };
});

describe("peer handshake", () => {
  it("two devices of the team prove themselves and share a sealed channel", async () => {
    const { cr, lr } = await run(await creds({ device: "till-1" }), await creds({ device: "till-2", role: "admin" }));
    expect(cr.status).toBe("fulfilled");
    expect(lr.status).toBe("fulfilled");
    if (cr.status !== "fulfilled" || lr.status !== "fulfilled") return;
    expect(cr.value.peer).toMatchObject({ device: "till-2", user: "clerk-till-2", team: "shop", role: "admin" });
    expect(lr.value.peer).toMatchObject({ device: "till-1", role: "member" });

    const frames = await Promise.all([1, 2, 3].map((n) => cr.value.channel.seal(new Uint8Array([n, n, n]))));
    expect(await Promise.all(frames.map((f) => lr.value.channel.open(f)))).toEqual([1, 2, 3].map((n) => new Uint8Array([n, n, n])));
    const back = await lr.value.channel.seal(new Uint8Array([9]));
    expect(await cr.value.channel.open(back)).toEqual(new Uint8Array([9]));
    // Replayed, reordered or altered: refused, and the channel stays refused.
    await expect(cr.value.channel.open(back)).rejects.toThrow("failed its integrity check");
    const next = await lr.value.channel.seal(new Uint8Array([10]));
    await expect(cr.value.channel.open(next)).rejects.toThrow("channel broken");
  });

  it("each side refuses what it must, and says why locally", async () => {
    const other = await run(await creds({ device: "till-1" }), await creds({ device: "rival-1", team: "rival" }));
    expect(other.cReason).toBe("peer refused: certificate is for team rival, not shop");

    const auditor = await run(await creds({ device: "aud-1", role: "auditor" }), await creds({ device: "till-2" }));
    expect(auditor.lReason).toBe("peer refused: role auditor may not sync ledgers");

    const expired = await run(await creds({ device: "old", exp: Math.floor(Date.now() / 1000) - 10 }), await creds({ device: "till-2" }));
    expect(expired.lReason).toBe("peer refused: certificate refused: jwt expired");

    const strangerService = createTokenService(keys(), { issuer: "ledger-sync", audience: "ledger-sync", ttlSeconds: 3600 });
    const foreign = await run(await creds({ device: "till-9" }, undefined, strangerService), await creds({ device: "till-2" }));
    expect(foreign.lReason).toBe("peer refused: certificate refused: invalid signature");

    // A token is not a certificate, even signed by the same service.
    const token = service.issue({ sub: "clerk-till-1", team: "shop", role: "member", device: "till-1" });
    const asToken = await run({ key: (await generateDeviceKey()).key, certificate: token }, await creds({ device: "till-2" }));
    expect(asToken.lReason).toMatch(/^peer refused: certificate refused: jwt audience invalid/);

    const stolen = await creds({ device: "till-1" });
    const thief = await run({ key: (await generateDeviceKey()).key, certificate: stolen.certificate }, await creds({ device: "till-2" }));
    expect(thief.lReason).toBe("peer refused: signature of device till-1 does not verify for this session");
  });

  it("a frame recorded in one session does not verify in another", async () => {
    const a = await creds({ device: "till-1" });
    const b = await creds({ device: "till-2" });
    let recordedAuth = "";
    await run(a, b, policy, policy, (from, f) => {
      if (from === "l" && f.includes('"peer-auth"')) recordedAuth = f;
      return f;
    });
    const replay = await run(a, b, policy, policy, (from, f) => (from === "l" && f.includes('"peer-auth"') ? recordedAuth : f));
    expect(replay.cReason).toBe("peer refused: signature of device till-2 does not verify for this session");
  });

  it("a pairing code pins the listener's key", async () => {
    const l = await creds({ device: "till-2" });
    const code = await pairingCode(l.key.publicJwk);
    const ok = await run(await creds({ device: "till-1" }), l, { ...policy, pin: code });
    expect(ok.cr.status).toBe("fulfilled");
    const other = await creds({ device: "till-3" });
    const wrong = await run(await creds({ device: "till-1" }), other, { ...policy, pin: code });
    expect(wrong.cReason).toBe(`peer refused: device till-3 has key ${await pairingCode(other.key.publicJwk)}, not the paired ${code}`);
  });

  it("reads addresses and codes as a person types them", () => {
    expect(normalizePairingCode(" k7qm 3xpa ")).toBe("K7QM-3XPA");
    expect(normalizePairingCode("K7QM-3XP0")).toBeUndefined();
    expect(parsePeerAddress("ws://192.168.1.20:7000/#code=k7qm-3xpa")).toEqual({ url: "ws://192.168.1.20:7000/", pin: "K7QM-3XPA" });
    expect(parsePeerAddress("ws://192.168.1.20:7000/")).toEqual({ url: "ws://192.168.1.20:7000/" });
    expect(() => parsePeerAddress("192.168.1.20:7000")).toThrow(/is not a URL|must be ws/);
    expect(() => parsePeerAddress("ws://h:1/", "nope")).toThrow('pairing code "nope" is not 8 letters and digits like ABCD-EFGH');
  });
});
