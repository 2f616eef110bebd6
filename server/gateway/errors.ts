/**
 * Errors of the classic gateway. Messages are the reference document's where it has one
 * (../shared/reference/classic-batch-sync-api.md, "Error Handling"); the body keeps the classic
 * `{success: false, message}` beside the API's usual `error: {code, message}`.
 */
import { ApiError } from "../http/route.js";

export function invalid(message: string): ApiError {
  return new ApiError(400, "invalid-sync", message, { success: false, message });
}

export function notFound(message: string): ApiError {
  return new ApiError(404, "not-found", message, { success: false, message });
}

/** The authoritative state refuses it (stock ran out, the invoice is settled): a conflict, not bad input. */
export function conflict(message: string, extra: Record<string, unknown> = {}): ApiError {
  return new ApiError(409, "conflict", message, { success: false, message, ...extra });
}
