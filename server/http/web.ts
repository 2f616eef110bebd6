/**
 * The browser pages (built by tools/build-web.mjs into dist/web/): the till at `/app/`, the audit
 * view at `/audit/`. Static files only; everything they know comes from the API and the relay
 * with the signed-in person's own token, so serving them grants nothing.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import express, { type NextFunction, type Request, type Response, type Router } from "express";
import { packageRoot } from "../entry-point.js";

export const DEFAULT_WEB_DIR = path.join(packageRoot, "dist", "web");

/**
 * Scripts from this origin only, Automerge's wasm compiled (not `eval`), sockets and fetches to
 * this origin only, no frames: an injected string in a name can never run as code.
 */
const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "worker-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".wasm": "application/wasm",
  ".json": "application/json; charset=utf-8",
};

function pageHeaders(_req: Request, res: Response, next: NextFunction): void {
  res.set("Content-Security-Policy", PAGE_CSP);
  next();
}

export interface WebPagesOptions {
  /** Folder with `app/` and `audit/`; defaults to dist/web of the package. */
  dir?: string;
}

/** Whether the pages were built (the service runs without them, answering 404 and a hint). */
export function webPagesBuilt(dir = DEFAULT_WEB_DIR): boolean {
  return existsSync(path.join(dir, "app", "index.html")) && existsSync(path.join(dir, "audit", "index.html"));
}

export function webPages(opts: WebPagesOptions = {}): Router {
  const dir = opts.dir ?? DEFAULT_WEB_DIR;
  // Strict: `/app` redirects to `/app/`, which a non-strict router would take for the same path.
  const router = express.Router({ strict: true });
  router.use(pageHeaders);
  for (const page of ["app", "audit"]) {
    router.get(`/${page}`, (_req, res) => res.redirect(301, `/${page}/`));
    router.use(
      `/${page}`,
      express.static(path.join(dir, page), {
        index: "index.html",
        redirect: false,
        dotfiles: "deny",
        fallthrough: true,
        setHeaders(res, file) {
          const type = TYPES[path.extname(file)];
          if (type) res.set("Content-Type", type);
          // The page, its script and the worker are revalidated on every load so a new build
          // shows at once; offline, the service worker's cache answers instead.
          res.set("Cache-Control", "no-cache");
          // The worker lives under /app/ and controls /app/ only.
          if (file.endsWith("sw.js")) res.set("Service-Worker-Allowed", `/${page}/`);
        },
      }),
    );
    router.use(`/${page}`, (_req, res) => {
      res.status(404).type("text/plain").send(webPagesBuilt(dir) ? "not found" : "the browser pages are not built: run npm run build");
    });
  }
  return router;
}
