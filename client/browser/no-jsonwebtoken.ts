/**
 * `jsonwebtoken` for the browser build (tools/build-web.mjs maps it here). The client reaches it
 * only through peer-link certificates (shared/auth/certificate.ts), and a browser has no peer
 * links (no listener, no raw sockets): anything that gets here is a bug, said plainly.
 */
function unavailable(): never {
  throw new Error("peer-link certificates are not available in the browser");
}

export default { verify: unavailable, sign: unavailable, decode: unavailable };
export const verify = unavailable;
export const sign = unavailable;
export const decode = unavailable;
