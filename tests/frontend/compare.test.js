// Comparing runs (frontend/steps.js): each run's step under each sync mode, and the layer in the same role.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  epochEnds,
  logsEpochs,
  modelOrder,
  panelStep,
  panelStepNote,
  roleLayer,
  stepAtPosition,
  trainingPosition,
} from "../../frontend/steps.js";
import { PANEL_MIN, panelColumns } from "../../frontend/widgets.js";

const short = { steps: [0, 50, 100, 150, 200] }; // a run of 200 steps
const long = { steps: [0, 100, 250, 500, 750, 1000] }; // a run of 1000 steps

test("sync by step: each run shows its last logged step at or before the slider's", () => {
  assert.deepEqual(panelStep("step", 160, short, long), { position: 160, target: 160, index: 1, step: 100 });
  assert.equal(panelStep("step", 160, short, short).step, 150);
  assert.equal(panelStep("step", 200, short, { steps: [7] }).step, 7); // a one-step run: its only step
  assert.equal(panelStep("step", 3, long, { steps: [5, 9] }).step, 5); // nothing that early: its first
  assert.deepEqual(panelStep("step", 3, short, { steps: [] }), {
    position: 3,
    target: 3,
    index: -1,
    step: null,
  });
});

test("sync by fraction: the same share of each run's own training (step / its last step)", () => {
  // The slider at step 100 of the 200-step run is 50%: the 1000-step run shows step 500.
  assert.deepEqual(panelStep("fraction", 100, short, long), {
    position: 0.5,
    target: 500,
    index: 3,
    step: 500,
  });
  // 75% of 1000 = 750; 30% (step 60 of 200) = 300: the last logged at or before is 250.
  assert.equal(panelStep("fraction", 150, short, long).step, 750);
  assert.equal(panelStep("fraction", 60, short, long).step, 250);
  assert.equal(panelStep("fraction", 200, short, long).step, 1000); // the end lines up with the end
  // 0.3 * 10 is 3.0000000000000004 in floating point: still step 3, not the step before it.
  assert.equal(panelStep("fraction", 3, { steps: [0, 10] }, { steps: [0, 2, 3, 10] }).step, 3);
  // A run whose last step is 0 counts as done: the other run's end.
  assert.equal(trainingPosition("fraction", 0, [0]), 1);
  assert.equal(panelStep("fraction", 0, { steps: [0] }, long).step, 1000);
  assert.equal(stepAtPosition("fraction", 0.5, []), 0);
});

test("sync by epoch: epochs done, fractional within an epoch, from each run's epoch ends", () => {
  const a = { steps: [0, 10, 20, 30, 40], ends: [20, 40] }; // 20 steps an epoch
  const b = { steps: [0, 50, 100, 150, 200, 250, 300], ends: [100, 200, 300] }; // 100 steps an epoch
  assert.equal(trainingPosition("epoch", 30, a.steps, a.ends), 1.5);
  assert.equal(stepAtPosition("epoch", 1.5, b.steps, b.ends), 150);
  assert.equal(panelStep("epoch", 30, a, b).step, 150);
  assert.equal(panelStep("epoch", 20, a, b).step, 100); // the end of epoch 1 to the end of epoch 1
  assert.equal(panelStep("epoch", 40, a, b).step, 200);
  assert.equal(trainingPosition("epoch", 50, a.steps, a.ends), 2.5); // past the last end: an epoch under way
  assert.equal(panelStep("epoch", 50, a, b).step, 250); // half of B's third epoch (its epochs are 100 steps)
  assert.equal(stepAtPosition("epoch", 5, b.steps, b.ends), 500); // beyond its epochs: extrapolated, then clamped by atOrBefore
  assert.equal(panelStep("epoch", 40, a, { steps: [0, 10], ends: [10] }).step, 10);
});

test("epochs are offered only when every compared run logs them", () => {
  assert.deepEqual(epochEnds({ epoch_ends: [30, 10, null, 20] }), [10, 20, 30]);
  assert.deepEqual(epochEnds({ name: "a" }), []);
  assert.equal(logsEpochs([{ epoch_ends: [10] }, { epoch_ends: [5] }]), true);
  assert.equal(logsEpochs([{ epoch_ends: [10] }, { name: "steps only" }]), false);
  assert.equal(logsEpochs([]), false);
});

test("the step line says when a panel's step is not the slider's", () => {
  assert.equal(panelStepNote("step", 40, panelStep("step", 40, short, { steps: [40] }), 40, "a"), "step 40");
  assert.equal(
    panelStepNote("step", 160, panelStep("step", 160, short, long), 1000, "a"),
    "step 100 · the slider is at step 160: this run's last logged step at or before it",
  );
  assert.equal(
    panelStepNote("step", 3, panelStep("step", 3, short, { steps: [5] }), 5, "a"),
    "step 5 · the slider is at step 3: this run logged nothing that early",
  );
  assert.equal(
    panelStepNote("fraction", 100, panelStep("fraction", 100, short, long), 1000, "short"),
    "step 500 of 1000 (50% of its training) · slider: step 100 = 50% of short's",
  );
  assert.equal(panelStepNote("step", 3, { step: null }, undefined, "a"), "no step logged");
});

test("a layer in the same role: the same name, else the same place in the run's own list", () => {
  const vgg = ["features.0", "features.3", "features.6", "features.9", "classifier.1"];
  const tiny = ["conv1", "conv2", "fc"];
  assert.equal(roleLayer(vgg, "features.0", tiny), "conv1"); // the first conv of each
  assert.equal(roleLayer(vgg, "classifier.1", tiny), "fc"); // last to last
  assert.equal(roleLayer(vgg, "features.6", tiny), "conv2"); // the middle: 2/4 of the way -> 1/2
  assert.equal(roleLayer(tiny, "conv2", vgg), "features.6");
  assert.equal(roleLayer(tiny, "fc", ["fc", "conv1"]), "fc"); // the same name wins over the place
  assert.equal(roleLayer(["only"], "only", tiny), "conv1");
  assert.equal(roleLayer(vgg, "not there", tiny), "conv1");
  assert.equal(roleLayer(vgg, "features.0", []), null);
});

test("layers in the model's order: the run's layer_order record, the layers it does not name after them", () => {
  const run = { kinds: { layer_order: { layers: ["stem", "body", "head.conv"] } } };
  assert.deepEqual(modelOrder(run, ["body", "extra", "head.conv", "stem"]), [
    "stem",
    "body",
    "head.conv",
    "extra",
  ]);
  assert.deepEqual(modelOrder({ kinds: {} }, ["b", "a"]), ["b", "a"]); // no record: as given
  // Two architectures: the reference's names sort against its order (stem runs first), the other's with it.
  const other = { kinds: { layer_order: { layers: ["conv_a", "conv_b"] } } };
  const refLayers = modelOrder(run, ["body", "stem"]);
  assert.deepEqual(refLayers, ["stem", "body"]);
  assert.equal(roleLayer(refLayers, "stem", modelOrder(other, ["conv_a", "conv_b"])), "conv_a"); // first to first
  assert.equal(roleLayer(refLayers, "body", modelOrder(other, ["conv_a", "conv_b"])), "conv_b");
  // By the names' order alone the reference's first conv would have matched the other's last.
  assert.equal(roleLayer(["body", "stem"], "stem", ["conv_a", "conv_b"]), "conv_b");
});

test("panels to a row: as many as fit at PANEL_MIN px, rows balanced", () => {
  const row = (viewport) => viewport - 32; // .view-root's padding
  assert.equal(panelColumns(4, row(1920)), 4);
  assert.equal(panelColumns(4, row(1280)), 2); // 2 + 2, not 3 + 1
  assert.equal(panelColumns(4, row(900)), 1); // 868 px: one 440 px panel to a row
  assert.equal(panelColumns(3, row(1280)), 2);
  assert.equal(panelColumns(2, row(900)), 1);
  assert.equal(panelColumns(2, row(1280)), 2);
  assert.equal(panelColumns(1, row(1920)), 1);
  assert.equal(panelColumns(0, 500), 1);
  assert.equal(panelColumns(4, 300), 1);
  assert.equal(panelColumns(4, 4 * PANEL_MIN + 3 * 12), 4); // exactly fits
  assert.equal(panelColumns(4, 4 * PANEL_MIN + 3 * 12 - 1), 2);
});
