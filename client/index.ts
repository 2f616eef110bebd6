/**
 * The device client, platform-neutral part. Node code imports `openDevice` from ./node.js; the
 * web till passes browser/platform.ts's Platform (IndexedDB storage, browserSocketFactory).
 */
export { Device, type DeviceEvents, type DeviceOptions, type EntryStatus, type InvoiceView, type Platform } from "./device.js";
export type { PeerListener, ListenArgs, PeerPlatform, DeviceKeyStore, PeerDiscovery, FoundPeer, DiscoveryOptions } from "./peer/types.js";
export type { PeerAccess, CertificateRecord } from "./peer/links.js";
export type { PeerIdentity } from "./peer/handshake.js";
export { ClientError, type ClientErrorCode } from "./errors.js";
export type { SaleInput, SaleLineInput, PaymentInput, StockInput, VoidInput } from "./entries.js";
export { IDLE_RETURN_MS, type AllowanceView, type AtRiskLine } from "./allowances.js";
export type { CatalogView, NewItem, CatalogEditor } from "./catalog.js";
export { browserSocketFactory, type SocketFactory, type SocketLike } from "./socket.js";
export { ReconnectingClientAdapter, type LinkStatus } from "./ws-client-adapter.js";
export { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from "./backoff.js";
export { changeSafely, isOutdatedDocumentError, isWedged, recoverHandle, recoverIfWedged } from "./safe-change.js";
