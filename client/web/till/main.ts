/**
 * The web till: the same Device as the Node client, on IndexedDB and the browser's WebSocket.
 * Boot order matters offline: the service worker serves these files, Automerge's wasm comes from
 * the same cache, and the device opens from IndexedDB without waiting for the relay.
 */
import { initializeWasm } from "@automerge/automerge/slim";
import type { AutomergeUrl } from "@automerge/automerge-repo";
import { Device } from "../../index.js";
import { readOwnClaims } from "../../token.js";
import { browserPlatform } from "../../browser/platform.js";
import type { LedgerEntry } from "../../../shared/domain/index.js";
import { h, replace } from "../common/dom.js";
import { forgetTillToken, loadTillSession, saveTillSession, type TillSession } from "../common/session.js";
import { readableReason, screens, type Screen } from "./screens.js";
import { sessionFromLink, tillSignInForm } from "./signin.js";
import { OfflineMade } from "./offline-made.js";

const root = document.getElementById("till")!;

async function boot(): Promise<void> {
  if ("serviceWorker" in navigator) {
    // Not awaited: the till works without it, it only makes the next load work offline.
    navigator.serviceWorker.register("./sw.js", { scope: "./" }).catch((err: unknown) => console.warn("service worker not registered", err));
  }
  // Unacknowledged sales live only here: ask the browser not to evict them under storage pressure.
  void navigator.storage?.persist?.().catch(() => false);
  await initializeWasm("./automerge.wasm");
  const linked = sessionFromLink(location.hash);
  if (linked !== undefined) history.replaceState(null, "", location.pathname);
  if (typeof linked === "object") saveTillSession(linked);
  const session = loadTillSession();
  if (session && session.token) return open(session);
  showSignIn(typeof linked === "string" ? linked : undefined);
}

function showSignIn(notice?: string): void {
  replace(root, tillSignInForm((s) => void open(s), notice));
}

/**
 * One page per device: two tabs would be two Repos writing one device's segment from one
 * IndexedDB. Held (never released) until the page goes away; true when this page got it.
 */
function holdDeviceLock(name: string): Promise<boolean> {
  if (!navigator.locks) return Promise.resolve(true);
  return new Promise((resolve) => {
    navigator.locks
      .request(name, { ifAvailable: true }, (lock) => {
        resolve(lock !== null);
        return lock ? new Promise<void>(() => undefined) : undefined;
      })
      .catch(() => resolve(true));
  });
}

async function open(session: TillSession): Promise<void> {
  replace(root, h("p", { class: "card", role: "status" }, "Opening the till…"));
  if (!(await holdDeviceLock(`ledger-sync/${session.team}/${session.deviceId}`))) {
    replace(root, h("p", { class: "card error", role: "alert", id: "other-tab" }, `This till (${session.deviceId}) is already open in another tab or window of this browser: use that one.`));
    return;
  }
  let device: Device;
  try {
    device = await Device.open({
      serverUrl: location.origin,
      token: () => loadTillSession()?.token ?? session.token,
      deviceId: session.deviceId,
      rootUrl: session.rootUrl as AutomergeUrl,
      publicKeyPem: session.publicKey,
      platform: browserPlatform(`ledger-sync/${session.team}/${session.deviceId}`),
      offline: !navigator.onLine,
    });
  } catch (err) {
    showSignIn(`The till could not open: ${err instanceof Error ? err.message : String(err)}`);
    return;
  }
  runTill(device, session);
}

function runTill(device: Device, session: TillSession): void {
  const offlineMade = new OfflineMade(session.deviceId);
  const connection = h("span", { class: "pill", id: "connection", role: "status" });
  const pending = h("span", { class: "pill", id: "pending", role: "status" });
  const notices = h("div", { id: "notices", role: "alert", "aria-live": "assertive" });
  const message = h("p", { id: "message", role: "status", "aria-live": "polite" });
  const main = h("main", { id: "screen" });
  const nav = h("nav", { "aria-label": "Screens" });
  let lastReason = "";

  const ctx = {
    device,
    say(text: string, error = false) {
      message.textContent = text;
      message.className = error ? "error" : "ok";
    },
    recorded(entry: LedgerEntry) {
      if (!device.online) offlineMade.add(entry.id);
      refresh();
    },
  };
  const all = screens(ctx);
  let current: Screen = all[0]!;
  let live: HTMLElement = h("div");

  function show(screen: Screen): void {
    current = screen;
    for (const b of Array.from(nav.querySelectorAll("button"))) b.setAttribute("aria-pressed", String(b.textContent === screen.name));
    live = h("div");
    replace(main, screen.form(), live);
    message.textContent = "";
    refresh();
  }

  function drawStatus(): void {
    const online = device.online;
    // A browser never learns why a WebSocket upgrade was refused: the token's own expiry tells.
    const expired = !online && session.token !== "" && readOwnClaims(session.token).exp * 1000 <= Date.now();
    connection.textContent = online ? "Online" : expired ? "Offline (sign-in expired)" : `Offline${lastReason ? ` (${lastReason})` : ""}`;
    connection.className = `pill ${online ? "online" : "offline"}`;
    const n = device.pendingCount();
    pending.textContent = n === 0 ? "All entries delivered" : `${n} not yet acknowledged`;
    pending.className = `pill ${n === 0 ? "online" : "waiting"}`;
    const rejected = device.ownEntries().filter((e) => e.status === "rejected" && offlineMade.shouldNotify(e.entry.id));
    replace(
      notices,
      expired
        ? h("div", { class: "notice", id: "expired" }, h("strong", {}, "The sign-in has expired."), " Entries are kept on this device; sign in again to deliver them.", signOut("Sign in again"))
        : null,
      ...rejected.map((e) =>
        h(
          "div",
          { class: "notice", "data-entry": e.entry.id },
          h("strong", {}, `A ${e.entry.kind} made offline was rejected`),
          ` (${e.entry.id.slice(0, 8)}, ${e.entry.at.slice(0, 16).replace("T", " ")}): ${e.reason ? readableReason(device, e.reason) : "no reason given"}`,
          h("button", { type: "button", onclick: () => { offlineMade.dismiss(e.entry.id); drawStatus(); } }, "Dismiss"),
        ),
      ),
    );
  }

  let scheduled = false;
  function refresh(): void {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => {
      scheduled = false;
      drawStatus();
      replace(live, current.live());
    });
  }

  for (const s of all) nav.append(h("button", { type: "button", onclick: () => show(s) }, s.name));
  // Forgets the token only: the device id, its documents and unsent entries stay for the next sign-in.
  function signOut(label: string): HTMLButtonElement {
    return h("button", {
      type: "button",
      class: "link",
      onclick: () => {
        forgetTillToken();
        void device.close().then(() => location.reload());
      },
    }, label);
  }
  replace(
    root,
    h("header", {}, h("span", { class: "who" }, `${session.team} · ${session.user} · ${session.deviceId}`), connection, pending, signOut("Sign out")),
    notices,
    nav,
    message,
    main,
  );

  device.on("online", () => { lastReason = ""; refresh(); });
  device.on("offline", (e) => {
    lastReason = e.reason;
    refresh();
  });
  device.on("progress", refresh);
  device.on("verdict", refresh);
  // The browser knows first when the network goes: pause and resume the relay link with it.
  window.addEventListener("offline", () => { device.goOffline(); refresh(); });
  window.addEventListener("online", () => { device.goOnline(); refresh(); });
  // Catalog and others' entries arrive without events of their own: a slow poll keeps figures fresh.
  setInterval(refresh, 1000);
  show(current);
}

boot().catch((err: unknown) => {
  replace(root, h("p", { class: "card error", role: "alert" }, `The till could not start: ${err instanceof Error ? err.message : String(err)}`));
});
