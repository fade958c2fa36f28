// When the tab asks api/runs/version whether new data arrived, and how it counts what arrived
// (pure: no DOM, no fetching; tested in tests/frontend/live.test.js).
//
// TensorBoard 2.21 starts with its "Reload data" toggle off, so the tab cannot wait for its
// reload event: while the page is visible it polls the cheap runs/version every POLL_MS;
// once hidden it slows down to HIDDEN_POLL_MS and stops after HIDDEN_STOP_MS (a tab left in the
// background for hours asks nothing); becoming visible again polls at once. A failed poll (the
// server restarting) waits longer each time, up to the hidden pace.

export const POLL_MS = 4000;
export const HIDDEN_POLL_MS = 30_000;
export const HIDDEN_STOP_MS = 5 * 60_000;

/**
 * Milliseconds until the next poll, or null to stop polling (until the page is visible again).
 * `visible`: document.visibilityState === "visible"; `hiddenMs`: how long it has been hidden;
 * `failures`: polls that failed in a row.
 */
export function pollDelay({ visible, hiddenMs = 0, failures = 0 }) {
  if (!visible && hiddenMs >= HIDDEN_STOP_MS) return null;
  const pace = visible ? POLL_MS : HIDDEN_POLL_MS;
  return Math.min(HIDDEN_POLL_MS, pace * 2 ** Math.max(0, Math.min(failures, 8)));
}

/** How many of `now` (ascending steps) are not in `before`: the new steps a reload brought. */
export function newSteps(before, now) {
  const known = new Set(before);
  return now.filter((step) => !known.has(step)).length;
}

/** The header's line after a reload: "updated 14:03:07 · 2 new steps" (time as hh:mm:ss, local). */
export function updatedNote(date, added) {
  const pad = (n) => String(n).padStart(2, "0");
  const time = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  if (!added) return `updated ${time}`;
  return `updated ${time} · ${added} new step${added === 1 ? "" : "s"}`;
}
