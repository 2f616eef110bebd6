/**
 * WebSocket close codes the relay sends. 1008/1009 also come from ws itself (too many fragments,
 * message too big); the 4xxx codes are ours, each with a reason string naming the cause.
 */
export const CloseCode = {
  /** Relay shutting down; reconnect later. */
  GoingAway: 1001,
  /** Too many fragments (ws) or another policy violation. */
  PolicyViolation: 1008,
  /** Message over maxPayload (ws). */
  MessageTooBig: 1009,
  /** The token expired during the session. */
  TokenExpired: 4001,
  /** A newer session of the same team, user and device joined with the same peer id. */
  PeerIdInUse: 4003,
  /** Messages or documents per second over the limit, or too many messages waiting for checks. */
  RateLimited: 4008,
  /** Outgoing buffer over the cap: the peer does not read. */
  SlowConsumer: 4009,
  /** Not CBOR, not a repo message, a broken sync message, or a sender id that is not the peer's. */
  InvalidMessage: 4400,
  /** A document over its size budget. */
  DocumentTooLarge: 4413,
  /** The token already has its share of sessions (an upgrade that raced the handshake check). */
  TooManyConnections: 4429,
  /** The team has registered as many documents as it may; the reason names the document refused. */
  TeamDocumentLimit: 4507,
} as const;

export type CloseCodeValue = (typeof CloseCode)[keyof typeof CloseCode];
