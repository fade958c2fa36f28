// The line a panel shows for the background snapshots its run skipped (frontend/layer_view.js droppedNotice).
import assert from "node:assert/strict";
import { test } from "node:test";

import { droppedNotice } from "../../frontend/layer_view.js";

const run = {
  name: "r",
  dropped: {
    patterns: { count: 2, last_step: 180, view: "patterns" },
    embedding: { count: 1, last_step: 40, view: "embedding" },
  },
};

test("droppedNotice names the count, the snapshot and why, for the view's own snapshots only", () => {
  assert.equal(
    droppedNotice(run, "patterns"),
    "2 patterns snapshots skipped (last at step 180): the previous one was still running",
  );
  assert.equal(
    droppedNotice(run, "embedding"),
    "1 embedding snapshot skipped (last at step 40): the previous one was still running",
  );
  assert.equal(droppedNotice(run, "filters"), "");
});

test("droppedNotice is empty for a run without drops or from an older backend", () => {
  assert.equal(droppedNotice({ name: "r", dropped: {} }, "patterns"), "");
  assert.equal(droppedNotice({ name: "r" }, "patterns"), "");
});

test("droppedNotice says when TensorBoard sampled a series of the view (api/runs/list's sampled)", () => {
  const capped = {
    ...run,
    sampled: [{ kind: "kernels", layer: "conv1", view: "filters", kept: 12, logged: 40 }],
  };
  assert.equal(
    droppedNotice(capped, "filters"),
    "showing 12 of at least 40 kernels snapshots of conv1: TensorBoard kept a sample (--samples_per_plugin cnnviz=0 keeps all)",
  );
  assert.equal(droppedNotice(capped, "activations"), "");
  assert.equal(droppedNotice({ name: "r", sampled: [] }, "filters"), "");
});
