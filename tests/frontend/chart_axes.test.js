// The line chart's axes (frontend/draw.js) and the smoothness band (frontend/views/filters/data.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import { dataRange, niceStep, niceTicks, stepTicks, tickLabel } from "../../frontend/draw.js";
import { quantileBand } from "../../frontend/views/filters/data.js";

test("ticks at round values: 1, 2 or 5 times a power of ten, about 4 intervals", () => {
  assert.equal(niceStep(9), 2);
  assert.equal(niceStep(40), 10);
  assert.equal(niceStep(2), 0.5);
  assert.equal(niceStep(0.06), 0.02);
  assert.equal(niceStep(0), 1);
  assert.deepEqual(niceTicks(-1, 1), [-1, -0.5, 0, 0.5, 1]);
  assert.deepEqual(niceTicks(0.08, 0.14), [0.08, 0.1, 0.12, 0.14]);
  assert.deepEqual(niceTicks(0.0984, 0.1216), [0.1, 0.105, 0.11, 0.115, 0.12]);
  assert.deepEqual(niceTicks(-0.3, 0.1), [-0.3, -0.2, -0.1, 0, 0.1]); // no "-0", no 0.30000000000000004
  assert.ok(!Object.is(niceTicks(-0.3, 0.1)[3], -0));
});

test("step ticks: whole round steps; a single step has one tick, not '-1 0 0 1 1'", () => {
  assert.deepEqual(stepTicks(1, 10), [2, 4, 6, 8, 10]);
  assert.deepEqual(stepTicks(1, 40), [10, 20, 30, 40]);
  assert.deepEqual(stepTicks(1, 3), [1, 2, 3]); // never a fractional step
  assert.deepEqual(stepTicks(0, 200000), [0, 50000, 100000, 150000, 200000]);
  assert.deepEqual(stepTicks(0, 0), [0]);
  assert.deepEqual(stepTicks(7, 7), [7]);
  assert.deepEqual(stepTicks(NaN, 3), []);
});

test("tick labels carry the decimals their spacing needs", () => {
  assert.equal(tickLabel(0.25, 0.05), "0.25");
  assert.equal(tickLabel(0.1, 0.005), "0.100");
  assert.equal(tickLabel(-0.5, 0.5), "-0.5");
  assert.equal(tickLabel(200, 50), "200");
  assert.equal(tickLabel(2e6, 5e5), "2.0e+6");
});

test("the y range fits the data with a margin, inside the clamp", () => {
  // A mean between 0.10 and 0.12 gets a range of 0.0984..0.1216 (8% of the span each side), not -1..1.
  const [lo, hi] = dataRange([[0.1, 0.12, null, NaN]]);
  assert.ok(Math.abs(lo - 0.0984) < 1e-12 && Math.abs(hi - 0.1216) < 1e-12, `${lo} ${hi}`);
  // A flat line sits in the middle of a span of at least minSpan.
  assert.deepEqual(
    dataRange([[0.5, 0.5]], { minSpan: 0.02 }).map((x) => +x.toFixed(6)),
    [0.49, 0.51],
  );
  // Near the end of the valid range: shifted inside it, its span kept.
  assert.deepEqual(
    dataRange([[0.99, 1]], { clamp: [-1, 1] }).map((x) => +x.toFixed(6)),
    [0.98, 1],
  );
  assert.deepEqual(dataRange([[-5, 5]], { clamp: [-1, 1] }), [-1, 1]);
  assert.deepEqual(dataRange([[null]]), [0, 1]);
  assert.deepEqual(dataRange([[]], { clamp: [-1, 1] }), [-1, 1]);
  // Several series (a band's low and high ends included) share the range.
  assert.deepEqual(dataRange([[0], [1]], { margin: 0 }), [0, 1]);
});

test("the band: the 10th and 90th percentiles of each step's finite per-filter values", () => {
  const band = quantileBand([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [null, NaN, 2], [], [4, 0]]);
  assert.deepEqual(band.counts, [10, 1, 0, 2]);
  assert.ok(Math.abs(band.lo[0] - 1.9) < 1e-12 && Math.abs(band.hi[0] - 9.1) < 1e-12);
  assert.deepEqual([band.lo[1], band.hi[1]], [2, 2]);
  assert.deepEqual([band.lo[2], band.hi[2]], [null, null]);
  assert.ok(Math.abs(band.lo[3] - 0.4) < 1e-12 && Math.abs(band.hi[3] - 3.6) < 1e-12); // sorted first
});
