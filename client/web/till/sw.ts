/**
 * The till's service worker: keeps the app's files (page, script, styles, Automerge's wasm) in a
 * cache named after the build, so a reload without network still opens the till. The API and
 * the relay are never cached or intercepted: figures come from the device's own documents.
 */
declare const __CACHE_NAME__: string;
declare const __APP_FILES__: string[];

interface ExtendableEvent extends Event {
  waitUntil(p: Promise<unknown>): void;
}
interface FetchEvent extends ExtendableEvent {
  readonly request: Request;
  respondWith(r: Promise<Response> | Response): void;
}
interface WorkerScope {
  readonly registration: { readonly scope: string };
  skipWaiting(): Promise<void>;
  readonly clients: { claim(): Promise<void> };
  addEventListener(type: "install" | "activate", fn: (e: ExtendableEvent) => void): void;
  addEventListener(type: "fetch", fn: (e: FetchEvent) => void): void;
}

const sw = self as unknown as WorkerScope;
const scope = new URL(sw.registration.scope);
const files = __APP_FILES__.map((f) => new URL(f, scope).href);

sw.addEventListener("install", (e) => {
  e.waitUntil(caches.open(__CACHE_NAME__).then((c) => c.addAll(files)).then(() => sw.skipWaiting()));
});

sw.addEventListener("activate", (e) => {
  e.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((n) => n.startsWith("till-") && n !== __CACHE_NAME__).map((n) => caches.delete(n))))
      .then(() => sw.clients.claim()),
  );
});

sw.addEventListener("fetch", (e) => {
  const url = new URL(e.request.url);
  if (e.request.method !== "GET" || url.origin !== scope.origin || !url.pathname.startsWith(scope.pathname)) return;
  // The page itself (any URL under /app/, an enrolment link's fragment included) is the cached index.
  const key = e.request.mode === "navigate" ? scope.href : url.origin + url.pathname;
  if (!files.includes(key)) return;
  // Network first while online, so a new build shows at once; the cache when the network fails.
  e.respondWith(
    fetch(e.request).then(
      (res) => {
        if (res.ok) {
          const copy = res.clone();
          void caches.open(__CACHE_NAME__).then((c) => c.put(key, copy));
        }
        return res;
      },
      async () => (await caches.match(key)) ?? new Response("offline and not cached", { status: 503, headers: { "content-type": "text/plain" } }),
    ),
  );
});
