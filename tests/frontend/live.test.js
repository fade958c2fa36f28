// Polling pace and the "n new steps" line (frontend/live.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  HIDDEN_POLL_MS,
  HIDDEN_STOP_MS,
  POLL_MS,
  newSteps,
  pollDelay,
  updatedNote,
} from "../../frontend/live.js";

test("a visible page polls every few seconds, a hidden one every 30 s, then stops", () => {
  assert.ok(POLL_MS >= 3000 && POLL_MS <= 5000);
  assert.equal(pollDelay({ visible: true }), POLL_MS);
  assert.equal(pollDelay({ visible: true, hiddenMs: 10 * HIDDEN_STOP_MS }), POLL_MS); // visible again
  assert.equal(pollDelay({ visible: false, hiddenMs: 0 }), HIDDEN_POLL_MS);
  assert.equal(pollDelay({ visible: false, hiddenMs: HIDDEN_STOP_MS - 1 }), HIDDEN_POLL_MS);
  assert.equal(pollDelay({ visible: false, hiddenMs: HIDDEN_STOP_MS }), null);
});

test("failed polls back off, doubling up to the hidden pace", () => {
  const delays = [0, 1, 2, 3, 4, 50].map((failures) => pollDelay({ visible: true, failures }));
  assert.deepEqual(delays, [
    POLL_MS,
    2 * POLL_MS,
    4 * POLL_MS,
    HIDDEN_POLL_MS,
    HIDDEN_POLL_MS,
    HIDDEN_POLL_MS,
  ]);
  assert.equal(pollDelay({ visible: false, failures: 3 }), HIDDEN_POLL_MS);
});

test("newSteps counts the steps a reload added", () => {
  assert.equal(newSteps([0, 10, 20], [0, 10, 20, 30, 40]), 2);
  assert.equal(newSteps([], [5]), 1);
  assert.equal(newSteps([0, 10], [0, 10]), 0);
  assert.equal(newSteps([0, 10, 20], [0, 20]), 0); // sampled away: nothing new
});

test("updatedNote says when and how many steps", () => {
  const at = new Date(2026, 0, 2, 9, 5, 7);
  assert.equal(updatedNote(at, 0), "updated 09:05:07");
  assert.equal(updatedNote(at, 1), "updated 09:05:07 · 1 new step");
  assert.equal(updatedNote(at, 12), "updated 09:05:07 · 12 new steps");
});
