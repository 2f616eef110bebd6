/**
 * Named points inside a batch where a test can stop the materializer dead, so that a SIGKILL of
 * the whole service lands exactly there (between the writes of one batch's projections) instead
 * of wherever a timer happens to fall. Armed only by MATERIALIZER_PAUSE_AT; a no-op otherwise.
 */
export type PausePoint = "after-journal" | "after-project" | "parts-write" | "after-parts" | "before-mark" | "after-close" | "before-counts";

export const PAUSE_POINTS: readonly PausePoint[] = ["after-journal", "after-project", "parts-write", "after-parts", "before-mark", "after-close", "before-counts"];

interface Armed {
  point: PausePoint;
  /** Passes left before the pause: the nth time the point is reached pauses. */
  remaining: number;
  announce: (point: PausePoint) => void;
}

let armed: Armed | undefined;

/** Arms one point; `spec` is `<point>:<n>` (the nth time it is reached), validated by config. */
export function armPausePoint(spec: { point: PausePoint; nth: number }, announce: (point: PausePoint) => void): void {
  armed = { point: spec.point, remaining: spec.nth, announce };
}

/** Never resolves once the armed point is reached the armed number of times. */
export function pausePoint(point: PausePoint): Promise<void> {
  if (!armed || armed.point !== point) return Promise.resolve();
  armed.remaining -= 1;
  if (armed.remaining > 0) return Promise.resolve();
  const { announce } = armed;
  armed = undefined;
  announce(point);
  return new Promise<void>(() => undefined);
}
