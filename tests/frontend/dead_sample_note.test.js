// The Dead filters view's note on what a window was counted on, for a layer with no dead filters defined.
import { test } from "node:test";
import assert from "node:assert/strict";
import { sampleNote } from "../../frontend/views/dead/data.js";

test("a layer with no dead filters says it was sampled apart, on the fewest batches", () => {
  const rates = {
    semantics: "none",
    batches_counted: [8, 200],
    batches_seen: [200, 200],
    count_every: [25, 1],
  };
  assert.equal(
    sampleNote(rates, 0),
    "Counted on 8 of 200 training batches of this window (one in 25: its rates are information only, so the overhead budget goes to the layers that report dead filters).",
  );
  assert.equal(sampleNote(rates, 1), "Counted on 200 of 200 training batches of this window.");
  const residual = { ...rates, semantics: "residual" };
  assert.match(sampleNote(residual, 0), /one in 25: its rates are information only/);
  const smooth = { ...rates, semantics: "smooth" }; // reported: the usual note
  assert.match(sampleNote(smooth, 0), /to keep the counting within its overhead budget\): dead means dead/);
});
