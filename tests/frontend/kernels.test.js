// Kernels as pictures (frontend/kernels.js): normalisation, input modes, the grid's layout.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  cellOrigin,
  filterPixels,
  hitKernelGrid,
  inputModes,
  kernelGridLayout,
  normalizeRange,
  weightStats,
} from "../../frontend/kernels.js";

/** Two 1-input 1×2 filters: [[-1, 1]] and [[2, 4]]. */
const twoFilters = () => ({ shape: [2, 1, 1, 2], data: new Float32Array([-1, 1, 2, 4]) });

const close = (actual, expected) =>
  assert.deepEqual(
    Array.from(actual, (v) => (Number.isNaN(v) ? NaN : Math.round(v * 1e6) / 1e6)),
    expected,
  );

test("global normalisation maps the layer's min to 0 and max to 1", () => {
  const { values, out, kh, kw, ch } = filterPixels(twoFilters(), "global", "mean");
  assert.deepEqual([out, kh, kw, ch], [2, 1, 2, 1]);
  close(values, [0, 0.4, 0.6, 1]); // (w + 1) / 5
});

test("per-filter normalisation stretches each filter on its own", () => {
  const { values } = filterPixels(twoFilters(), "per_filter", "mean");
  close(values, [0, 1, 0, 1]);
});

test("a constant filter is mid-grey and a NaN weight stays NaN", () => {
  const values = new Float32Array([3, 3, NaN, 1]);
  normalizeRange(values, 0, 2);
  normalizeRange(values, 2, 4);
  close(values, [0.5, 0.5, NaN, 0.5]);
});

test("input modes: RGB for three inputs, the mean, one input at a time", () => {
  const modes = inputModes(3).map((m) => m.value);
  assert.deepEqual(modes, ["rgb", "mean", "c0", "c1", "c2"]);
  assert.deepEqual(
    inputModes(1).map((m) => m.value),
    ["c0"],
  );
  assert.equal(inputModes(512).length, 1 + 64); // the mean, then at most 64 inputs
});

test("RGB keeps the three inputs; 'mean' averages them; 'c1' takes input 1", () => {
  // one filter, 3 inputs, 1×1: inputs 0.0, 1.0, 2.0
  const kernel = { shape: [1, 3, 1, 1], data: new Float32Array([0, 1, 2]) };
  const rgb = filterPixels(kernel, "global", "rgb");
  assert.equal(rgb.ch, 3);
  close(rgb.values, [0, 0.5, 1]);
  const mean = filterPixels(kernel, "per_filter", "mean");
  assert.equal(mean.ch, 1);
  close(mean.values, [0.5]); // one value: constant
  // two filters so the chosen input has a range: input 1 is 1 in filter 0 and 5 in filter 1
  const two = { shape: [2, 3, 1, 1], data: new Float32Array([0, 1, 2, 9, 5, 9]) };
  close(filterPixels(two, "global", "c1").values, [0, 1]);
});

test("the pixels of a kernel are cached per normalisation and mode", () => {
  const kernel = twoFilters();
  assert.equal(filterPixels(kernel, "global", "mean"), filterPixels(kernel, "global", "mean"));
  assert.notEqual(filterPixels(kernel, "global", "mean"), filterPixels(kernel, "per_filter", "mean"));
});

test("the grid layout is square-ish with integer scaling, and clicks hit the right filter", () => {
  const layout = kernelGridLayout(10, 3, 3, 100); // 4 columns, 3 rows
  assert.equal(layout.cols, 4);
  assert.equal(layout.rows, 3);
  assert.equal(layout.scale, Math.floor((100 - 2 * 5) / 12)); // 7
  assert.equal(layout.cellW, 21);
  assert.equal(layout.width, 4 * 21 + 2 * 5);
  assert.deepEqual(cellOrigin(layout, 5), [2 + 21 + 2, 2 + 21 + 2]);
  const [x, y] = cellOrigin(layout, 6);
  assert.equal(hitKernelGrid(layout, x + 1, y + 1), 6);
  assert.equal(hitKernelGrid(layout, x + 20, y + 20), 6);
  assert.equal(hitKernelGrid(layout, 3 * 23 + 5, 2 * 23 + 5), -1); // cell 11 of 10 filters
  assert.equal(hitKernelGrid(layout, -10, 5), -1);
});

test("weight statistics of one filter", () => {
  const stats = weightStats({ shape: [2, 1, 1, 2], data: new Float32Array([3, -4, 100, 100]) }, 0);
  assert.deepEqual(stats, { min: -4, max: 3, norm: 5 });
});
