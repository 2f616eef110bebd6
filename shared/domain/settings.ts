// Team settings that relax or tune the decision rules. Read from the team root, which devices
// cannot write, but still validated: a bad value must fall back to a clear error, not a crash.
import { parseAllowanceSettings, type AllowanceSettings } from "./allowances.js";
import { MAX_CLOSE_AFTER_HOURS, MAX_DEFER_WAIT_SECONDS } from "./bounds.js";

export type OversellPolicy = "reject" | "allow-negative";

export interface TeamSettings {
  /** `allow-negative` accepts sales and stock entries that take stock below zero, with a flag. */
  oversell: OversellPolicy;
  /** How long a payment or void waits for its invoice before it is rejected. */
  deferWaitSeconds: number;
  /**
   * Closes each day this many hours after its end (UTC midnight), so late arrivals no longer
   * change its summary (shared/domain/periods.ts). Null: days close only when an admin says so.
   */
  closeAfterHours: number | null;
  /** Offline stock allowances (shared/domain/allowances.ts); absent: no item is under the policy. */
  allowances?: AllowanceSettings;
}

export const DEFAULT_SETTINGS: Readonly<TeamSettings> = Object.freeze({
  oversell: "reject",
  deferWaitSeconds: 7 * 24 * 3600,
  closeAfterHours: null,
});

export type SettingsParse = { ok: true; settings: TeamSettings } | { ok: false; reason: string };

/** Missing fields take their defaults; present fields must be valid; unknown fields are refused. */
export function parseSettings(raw: unknown): SettingsParse {
  try {
    if (raw === undefined || raw === null) return { ok: true, settings: { ...DEFAULT_SETTINGS } };
    if (typeof raw !== "object" || Array.isArray(raw)) return { ok: false, reason: "settings must be an object" };
    const settings: TeamSettings = { ...DEFAULT_SETTINGS };
    for (const key of Object.keys(raw)) {
      const desc = Object.getOwnPropertyDescriptor(raw, key);
      const value: unknown = desc && "value" in desc ? desc.value : undefined;
      if (key === "oversell") {
        if (value !== "reject" && value !== "allow-negative") {
          return { ok: false, reason: "settings: oversell must be 'reject' or 'allow-negative'" };
        }
        settings.oversell = value;
      } else if (key === "deferWaitSeconds") {
        if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0 || value > MAX_DEFER_WAIT_SECONDS) {
          return { ok: false, reason: `settings: deferWaitSeconds must be an integer between 0 and ${MAX_DEFER_WAIT_SECONDS}` };
        }
        settings.deferWaitSeconds = value === 0 ? 0 : value;
      } else if (key === "closeAfterHours") {
        if (value !== null && (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0 || value > MAX_CLOSE_AFTER_HOURS)) {
          return { ok: false, reason: `settings: closeAfterHours must be null or an integer between 0 and ${MAX_CLOSE_AFTER_HOURS}` };
        }
        settings.closeAfterHours = value === 0 ? 0 : value;
      } else if (key === "allowances") {
        const parsed = parseAllowanceSettings(value);
        if (!parsed.ok) return parsed;
        settings.allowances = parsed.settings;
      } else {
        return { ok: false, reason: `settings: unknown field ${JSON.stringify(key.slice(0, 60))}` };
      }
    }
    return { ok: true, settings };
  } catch {
    return { ok: false, reason: "settings: could not be read" };
  }
}
