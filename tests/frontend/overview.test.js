// Overview helpers (frontend/views/overview/data.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  findingLink,
  lastText,
  lastValue,
  overviewSteps,
  separabilityText,
  smoothnessSpec,
  spreadMatrix,
  spreadText,
} from "../../frontend/views/overview/data.js";

const VIEWS = ["overview", "filters", "dead", "gradcam", "separability"];

test("a finding links to its view with its layer and step", () => {
  const finding = { rule: "dead_filters_rising", view: "dead", layer: "layer3.1.conv2", step: 4000 };
  assert.deepEqual(findingLink(finding, VIEWS), {
    view: "dead",
    intent: { layer: "layer3.1.conv2", step: 4000 },
  });
  assert.deepEqual(findingLink({ view: "gradcam", layer: null, step: null }, VIEWS), {
    view: "gradcam",
    intent: {},
  });
});

test("a finding whose view this frontend does not have links nowhere", () => {
  assert.equal(findingLink({ view: "patterns", layer: "c", step: 1 }, VIEWS), null);
  assert.equal(findingLink({ view: "", layer: null, step: 3 }, VIEWS), null);
  assert.equal(findingLink(null, VIEWS), null);
});

test("the overview's steps are the union of its parts' steps", () => {
  const data = {
    dead: { layers: [{ steps: [2, 4] }, { steps: [4, 6] }] },
    smoothness: { steps: [1, 2] },
    separability: { deepest: { steps: [6, 10] } },
    faithfulness: null,
    probe_accuracy: { steps: [3] },
  };
  assert.deepEqual(overviewSteps(data), [1, 2, 3, 4, 6, 10]);
  assert.deepEqual(overviewSteps({ dead: null }), []);
  assert.deepEqual(overviewSteps(null), []);
});

test("smoothness is drawn as its mean and a band of one spread, gaps kept", () => {
  const part = { steps: [0, 10, 20], mean: [0.1, null, 0.3], spread: [0.05, 0.1, null] };
  const { lines, bands } = smoothnessSpec(part, ["blue"]);
  assert.deepEqual(lines.length, 1);
  assert.deepEqual(lines[0].ys, [0.1, null, 0.3]);
  const rounded = (ys) => ys.map((y) => (y === null ? null : +y.toFixed(3)));
  assert.deepEqual(rounded(bands[0].hi), [0.15, null, null]);
  assert.deepEqual(rounded(bands[0].lo), [0.05, null, null]);
  assert.deepEqual(bands[0].xs, [0, 10, 20]);
});

test("separability at the last step reads layer by layer, the classifier's input named", () => {
  const part = {
    layers: [
      { layer: "relu2", measured_at: "output", accuracy: 0.412 },
      { layer: "features", measured_at: "output", accuracy: null },
      { layer: "classifier", measured_at: "input", accuracy: 0.875 },
    ],
  };
  assert.equal(separabilityText(part), "relu2 0.41 · features – · classifier (input) 0.88");
});

test("the last measured value and its step", () => {
  assert.deepEqual(lastValue([1, 2, 3], [0.5, 0.7, null]), { step: 2, value: 0.7 });
  assert.equal(lastValue([1], [null]), null);
  assert.equal(lastText([1000, 6000], [0.5, 0.826]), "0.83 at step 6,000");
  assert.equal(lastText([1], [null]), "not measured at any logged step");
});

test("the rate-spread map is steps × layers over the union of the layers' steps", () => {
  const part = {
    layers: [
      { layer: "conv1", steps: [2, 4], spread: [0.1, 0.2] },
      { layer: "conv2", steps: [4, 6], spread: [null, 0.3] },
    ],
  };
  const matrix = spreadMatrix(part);
  assert.deepEqual(matrix.steps, [2, 4, 6]);
  assert.deepEqual(matrix.layers, ["conv1", "conv2"]);
  assert.deepEqual(matrix.values, [
    [0.1, null],
    [0.2, null],
    [null, 0.3],
  ]);
  assert.equal(
    spreadText(matrix, 2, 1),
    "conv2 · step 6 · spread of activation rates 0.300 (standard deviation over filters)",
  );
  assert.equal(spreadText(matrix, 1, 1), "conv2 · step 4 · no finite rates");
  assert.equal(spreadText(matrix, 9, 0), "");
});
