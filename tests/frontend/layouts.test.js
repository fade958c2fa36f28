// Layouts and hit-tests of the views' pictures, and the other pure helpers of the views.
import assert from "node:assert/strict";
import { test } from "node:test";

import { tileAt } from "../../frontend/views/activations/index.js";
import { deadAt, sampleNote } from "../../frontend/views/dead/data.js";
import {
  classCounts,
  ease,
  hoverGrid,
  mapTransform,
  nearestPoint,
} from "../../frontend/views/embedding/map.js";
import { rateText, smoothnessText } from "../../frontend/views/filters/index.js";
import { dreamSettings, fitImage, galleryHit, galleryLayout } from "../../frontend/views/patterns/draw.js";
import { mosaicHit, mosaicLayout } from "../../frontend/views/top_images/index.js";

test("pattern gallery: as many 72 px columns as fit, a label line under each row", () => {
  const L = galleryLayout(10, 72, 620); // (620 + 6) / 78 = 8 columns
  assert.deepEqual([L.cols, L.rows], [8, 2]);
  assert.equal(L.width, 8 * 78 - 6);
  assert.equal(L.height, 2 * (72 + 16 + 6) - 6);
  assert.equal(galleryLayout(3, 72, 620).cols, 3); // never more columns than tiles
  assert.equal(galleryHit(L, 10, 5, 5), 0);
  assert.equal(galleryHit(L, 10, 78 + 5, 94 + 5), 9); // row 1, column 1
  assert.equal(galleryHit(L, 10, 2 * 78 + 5, 94 + 5), -1); // tile 10 of 10
  assert.equal(galleryHit(L, 10, -3, 5), -1);
});

test("activation tiles: the channel under a pixel, none on the padding past the last channel", () => {
  const layout = { nrow: 4, padding: 1, tile: [8, 8], channels: 6 };
  assert.equal(tileAt(layout, 2, 2), 0);
  assert.equal(tileAt(layout, 1 + 9 * 3 + 2, 2), 3);
  assert.equal(tileAt(layout, 2, 1 + 9 + 2), 4);
  assert.equal(tileAt(layout, 1 + 9 * 2 + 2, 1 + 9 + 2), -1); // channel 6 of 6
  assert.equal(tileAt(layout, 1 + 9 * 4 + 2, 2), -1); // past the last column
});

test("top images mosaic: 40 px cells, 28 px past 128 filters, clicks map to filters", () => {
  const L = mosaicLayout(30, 680); // 17 columns of 40 px
  assert.deepEqual([L.cols, L.rows, L.cell, L.width, L.height], [17, 2, 40, 680, 80]);
  assert.equal(mosaicLayout(200, 680).cell, 28);
  assert.equal(mosaicLayout(5, 680).width, 200); // a short row is only as wide as its cells
  assert.equal(mosaicHit(L, 41, 41), 18);
  assert.equal(mosaicHit(L, 13 * 40 + 1, 41), -1); // filter 30 of 30
});

test("a dream image fits its side: whole multiples when enlarging, a fraction when shrinking", () => {
  assert.deepEqual(fitImage(32, 32, 280), { scale: 8, width: 256, height: 256 });
  assert.deepEqual(fitImage(600, 300, 200), { scale: 1 / 3, width: 200, height: 100 });
  assert.equal(
    dreamSettings({ octaves: 1, octave_scale: 1.4, optimisation_steps: 10, lr: 0.01 }),
    "1 octave, scale 1.40, 10 steps each, lr 0.01",
  );
  assert.equal(
    dreamSettings({ octaves: 3, octave_scale: null, optimisation_steps: null, lr: null }),
    "3 octaves",
  );
});

test("the embedding map fits its bounds in the canvas, y up, then zooms about the origin", () => {
  const T = mapTransform([0, 10, 0, 5], { k: 1, tx: 0, ty: 0 }, 236, 236); // 200 px for 10 units: 20 px/unit
  assert.equal(T.x(5), 118); // centre
  assert.equal(T.y(2.5), 118);
  assert.equal(T.x(0), 18);
  assert.equal(T.x(10), 218);
  assert.equal(T.y(5), 68); // y grows upwards
  const Z = mapTransform([0, 10, 0, 5], { k: 2, tx: -118, ty: 4 }, 236, 236);
  assert.equal(Z.x(5), 118); // 2 × 118 - 118
  assert.equal(Z.y(2.5), 240);
});

test("hover finds the nearest visible point within 8 px, through a 12 px grid", () => {
  const screen = {
    sx: new Float32Array([10, 14, 100, 30]),
    sy: new Float32Array([10, 10, 100, 30]),
    visible: new Uint8Array([1, 1, 1, 0]),
  };
  const grid = hoverGrid(screen, 4);
  assert.equal(nearestPoint(grid, screen, 13, 10), 1);
  assert.equal(nearestPoint(grid, screen, 11, 11), 0);
  assert.equal(nearestPoint(grid, screen, 105, 104), 2); // 6.4 px away: in range
  assert.equal(nearestPoint(grid, screen, 107, 107), null); // 9.9 px away
  assert.equal(nearestPoint(grid, screen, 30, 30), null); // a hidden point is never picked
});

test("legend counts per class in class order, unknown as -1; the easing ends where it should", () => {
  const keys = [2, 0, null, 2, 2];
  const counts = classCounts(keys.length, (i) => keys[i]);
  assert.deepEqual(
    [...counts.entries()],
    [
      [-1, 1],
      [0, 1],
      [2, 3],
    ],
  );
  assert.equal(ease(0), 0);
  assert.equal(ease(0.5), 0.5);
  assert.equal(ease(1), 1);
  assert.equal(ease(0.25), 0.0625);
});

test("dead filters at a step: rate <= threshold, unmeasured filters never", () => {
  assert.deepEqual(deadAt([0, 0.2, null, 0.05, 0], 0), [0, 4]);
  assert.deepEqual(deadAt([0, 0.2, null, 0.05, 0], 0.1), [0, 3, 4]);
});

test("a filter's smoothness and activation rate as the Filters view writes them", () => {
  const panel = {
    smooth: {
      steps: [10, 20],
      values: [
        [0.5, 0.25],
        [0.75, 0.125],
      ],
      mean: [0.375, 0.4375],
    },
    rates: { steps: [20], rates: [[0.5, 0]] },
  };
  assert.equal(smoothnessText(panel, 15, 1), "0.250 (layer mean 0.375)");
  assert.equal(smoothnessText(panel, 20, 0), "0.750 (layer mean 0.438)");
  assert.equal(rateText(panel, 15, 1), "not measured yet at this step");
  assert.equal(rateText(panel, 25, 1), "0.000 at step 20 — dead");
  assert.equal(rateText(panel, 25, 0), "0.500 at step 20");
  assert.equal(rateText({ rates: null }, 25, 0), "not logged for this layer (dead_filter_layers)");
  assert.equal(smoothnessText({ smooth: null }, 25, 0), "not logged");
});

test("the dead view says how many batches a window was counted on", () => {
  const rates = { batches_counted: [3, 200, null], batches_seen: [25, 200, null], count_every: [9, 1, null] };
  assert.equal(
    sampleNote(rates, 0),
    "Counted on 3 of 25 training batches of this window (one in 9, to keep the counting within its overhead budget): dead means dead on every counted batch.",
  );
  assert.equal(
    sampleNote(rates, 1),
    "Counted on 200 of 200 training batches of this window: dead means dead on every counted batch.",
  );
  assert.equal(sampleNote(rates, 2), null); // a run written before the sample was recorded
  assert.equal(sampleNote({}, 0), null);
});
