/**
 * The one error class the client throws at its callers. `code` is stable and meant for code;
 * `message` is meant for a person (a clerk or a developer) and never contains a token.
 */
export type ClientErrorCode =
  /** The operation's input breaks a rule: nothing was written. */
  | "invalid-input"
  /** The device has never reached the relay, so it does not know its team's documents yet. */
  | "not-enrolled"
  /** A document the team needs is missing or malformed. */
  | "bad-document"
  /** The token does not fit this device (wrong device id, unreadable claims). */
  | "bad-token"
  /** The device has no (valid) certificate of its key for peer links, or could not get one. */
  | "not-certified"
  /** A peer link could not be made (unreachable, refused). */
  | "peer-link"
  /** The device was closed. */
  | "closed";

export class ClientError extends Error {
  constructor(
    readonly code: ClientErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "ClientError";
  }
}

export function invalidInput(message: string): ClientError {
  return new ClientError("invalid-input", message);
}
