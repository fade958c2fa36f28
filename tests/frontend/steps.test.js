// Logged steps and layers of runs (frontend/steps.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  atOrBefore,
  hasKind,
  kindsAt,
  layerUnion,
  layersWith,
  unionSteps,
  valueAt,
} from "../../frontend/steps.js";

test("atOrBefore finds the last logged step at or before a step", () => {
  const steps = [0, 10, 20, 30];
  assert.equal(atOrBefore(steps, 20), 2);
  assert.equal(atOrBefore(steps, 29), 2);
  assert.equal(atOrBefore(steps, 1000), 3);
  assert.equal(atOrBefore(steps, 0), 0);
  assert.equal(atOrBefore(steps, -5), 0); // before the first: the first
  assert.equal(atOrBefore([], 5), -1);
  assert.equal(atOrBefore([7], 3), 0);
});

test("atOrBefore agrees with a linear scan on many steps", () => {
  const steps = Array.from({ length: 500 }, (_, i) => i * 3 + (i % 7));
  for (const x of [-1, 0, 1, 2, 3, 100, 777, 1499, 1500, 5000]) {
    let expected = 0;
    for (let i = 0; i < steps.length; i++) if (steps[i] <= x) expected = i;
    assert.equal(atOrBefore(steps, x), expected, `x=${x}`);
  }
});

test("unionSteps merges and sorts numerically, each step once", () => {
  assert.deepEqual(unionSteps([1, 5, 100], [5, 20], []), [1, 5, 20, 100]);
  assert.deepEqual(unionSteps(), []);
});

test("valueAt reads a series at the last measured step at or before a step", () => {
  const steps = [10, 20];
  const rows = [
    [0.5, 0.1],
    [0.7, 0],
  ];
  assert.deepEqual(valueAt(steps, rows, 25, 1), { value: 0, step: 20 });
  assert.deepEqual(valueAt(steps, rows, 19, 0), { value: 0.5, step: 10 });
  assert.deepEqual(valueAt(steps, rows, 5, 0), { value: null, step: null }); // not measured yet
  assert.deepEqual(valueAt(steps, rows, 25, 7), { value: null, step: 20 }); // no such filter
  assert.deepEqual(valueAt([], [], 25, 0), { value: null, step: null });
});

const runA = {
  name: "a",
  layers: [
    { name: "features.conv10", kinds: { kernels: {}, activations: {} } },
    { name: "features.conv2", kinds: { kernels: {} } },
  ],
};
const runB = { name: "b", layers: [{ name: "features.conv1", kinds: { kernels: {}, dead_filters: {} } }] };

test("layers of runs: per kind, united across runs in natural order", () => {
  assert.deepEqual(layersWith(runA, "activations"), ["features.conv10"]);
  assert.deepEqual(layersWith(runB, "activations"), []);
  assert.deepEqual(
    layerUnion([runA, runB], (run) => layersWith(run, "kernels")),
    ["features.conv1", "features.conv2", "features.conv10"],
  );
  assert.equal(hasKind(runB, "features.conv1", "dead_filters"), true);
  assert.equal(hasKind(runA, "features.conv1", "kernels"), false);
  assert.deepEqual(Object.keys(kindsAt(runA, "features.conv10")), ["kernels", "activations"]);
  assert.deepEqual(kindsAt(runA, "nope"), {});
});
