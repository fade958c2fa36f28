// Separability view helpers (frontend/views/separability/data.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  cellText,
  chanceAt,
  depthCurves,
  heatRows,
  layerLabel,
  unmeasuredNote,
  valueAtStep,
} from "../../frontend/views/separability/data.js";

const OUTCOMES = ["measured", "not enough labelled images: need at least 5 per class and 2 classes"];
const layer = (name, accuracy, extra = {}) => ({
  layer: name,
  measured_at: "output",
  steps: [10, 20, 30],
  accuracy,
  chance: [0.1, 0.1, 0.1],
  ridge: [1, 10, 100],
  test_images: [30, 30, 30],
  outcome: [0, 0, 0],
  ...extra,
});
const DATA = {
  steps: [10, 20, 30],
  outcomes: OUTCOMES,
  layers: [
    layer("features.relu2", [0.2, 0.3, 0.4]),
    layer("features", [0.3, 0.6, 0.9]),
    layer("classifier", [0.35, 0.7, 0.95], { measured_at: "input" }),
  ],
};

test("depthCurves: one curve per logged step up to the selected one, older ones fainter", () => {
  const curves = depthCurves(DATA, 25);
  assert.deepEqual(
    curves.map((c) => c.step),
    [10, 20],
  );
  assert.deepEqual(curves[1].ys, [0.3, 0.6, 0.7]);
  assert.equal(curves[1].alpha, 1);
  assert.ok(curves[0].alpha < curves[1].alpha && curves[0].alpha > 0);
  assert.deepEqual(
    depthCurves(DATA, 30, { keep: 2 }).map((c) => c.step),
    [20, 30],
  );
  assert.deepEqual(depthCurves({ steps: [], layers: [] }, 5), []);
  assert.equal(depthCurves(DATA, 10)[0].alpha, 1);
});

test("heatRows: layers x steps, null where a layer was not logged at a step", () => {
  const data = { ...DATA, steps: [5, 10, 20, 30] };
  const rows = heatRows(data);
  assert.equal(rows.length, 3);
  assert.deepEqual(rows[0], [null, 0.2, 0.3, 0.4]);
  assert.equal(valueAtStep(DATA.layers[0], "accuracy", 15), null);
});

test("cellText says the accuracy with its chance level, or why there is none", () => {
  assert.equal(
    cellText(DATA, 2, 1),
    "classifier (input) · step 20: held-out accuracy 0.700 (chance 0.100, 30 held-out images, ridge 10)",
  );
  const missing = {
    ...DATA,
    layers: [layer("features", [null, null, null], { outcome: [1, 1, 1], chance: [null, null, null] })],
  };
  assert.match(cellText(missing, 0, 0), /no accuracy \(not enough labelled images: need at least 5/);
  assert.equal(unmeasuredNote(missing, 10), OUTCOMES[1]);
  assert.equal(unmeasuredNote(DATA, 10), null);
  assert.equal(cellText(DATA, 7, 0), "");
});

test("chanceAt and layerLabel", () => {
  assert.equal(chanceAt(DATA, 20), 0.1);
  assert.equal(chanceAt(DATA, 15), null);
  assert.equal(layerLabel(DATA.layers[2]), "classifier (input)");
  assert.equal(layerLabel(DATA.layers[0]), "features.relu2");
});
