// Explicit bounds: every number and string an entry may carry is limited so that sums stay
// exact in IEEE doubles (≤ 2^53) and no single entry costs more than a few microseconds to judge.

/** Largest money amount (minor units) in any field; 500 lines × 1e12 stays far below 2^53. */
export const MAX_MONEY = 1_000_000_000_000;
/** Largest quantity of one sale line. */
export const MAX_QUANTITY = 1_000_000;
/** Largest absolute delta of one stock entry. */
export const MAX_STOCK_DELTA = 1_000_000_000;
/** Most lines in one sale; bigger arrays are refused before any line is read. */
export const MAX_LINES = 500;
/** Ids are UUIDs in practice; the bound leaves room for prefixed ids. */
export const MAX_ID_LENGTH = 64;
/** Device and user names (JWT subjects can be e-mail addresses). */
export const MAX_ACTOR_LENGTH = 128;
export const MAX_NAME_LENGTH = 200;
export const MAX_UNIT_LENGTH = 32;
export const MAX_PHONE_LENGTH = 32;
/** Free text: reasons of stock and void entries, item descriptions. */
export const MAX_TEXT_LENGTH = 1_000;
/** Longest accepted deferral wait for an entry whose invoice has not arrived. */
export const MAX_DEFER_WAIT_SECONDS = 365 * 24 * 3600;
/** Most entries in one atomic group (`batch`); the gateway's requests stay far below it. */
export const MAX_BATCH_ENTRIES = 10_000;
/** Longest grace after a day's end before the `closeAfterHours` setting closes it (a year). */
export const MAX_CLOSE_AFTER_HOURS = 365 * 24;
