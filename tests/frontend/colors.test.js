// Colour scales (frontend/colors.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import { camPixels, categorical, jet, viridis } from "../../frontend/colors.js";

test("viridis: its anchors at 0, 1/4, 1 and linear between, clamped outside [0, 1]", () => {
  assert.deepEqual(viridis(0), [68, 1, 84]);
  assert.deepEqual(viridis(0.25), [59, 82, 139]);
  assert.deepEqual(viridis(1), [253, 231, 37]);
  assert.deepEqual(viridis(0.125), [64, 42, 112]); // halfway between the first two anchors
  assert.deepEqual(viridis(-3), viridis(0));
  assert.deepEqual(viridis(7), viridis(1));
});

test("jet: blue, green, red at 0, 1/2, 1", () => {
  assert.deepEqual(jet(0), [0, 0, 128]);
  assert.deepEqual(jet(0.5), [128, 255, 128]);
  assert.deepEqual(jet(1), [128, 0, 0]);
  assert.deepEqual(jet(0.75), [255, 128, 0]);
});

test("categorical colours are stable per class, grey for none, distinct hues past twenty", () => {
  assert.equal(categorical(0), "#4e79a7");
  assert.equal(categorical(19), "#79706e");
  assert.equal(categorical(-1), "#888888");
  assert.equal(categorical(null), "#888888");
  assert.equal(categorical(20), "hsl(230, 55%, 55%)"); // 20 × 137.508 = 2750.16, mod 360
  assert.notEqual(categorical(21), categorical(20));
});

test("raw CAM pixels: value / scale through jet, more opaque where stronger, zero where not finite", () => {
  const px = camPixels(new Float32Array([9, 0, 2, 4, NaN]), 1, 4, 4); // from offset 1: 0, 2, 4, NaN
  assert.deepEqual(Array.from(px.slice(0, 4)), [...jet(0), Math.round(255 * 0.15)]);
  assert.deepEqual(Array.from(px.slice(4, 8)), [...jet(0.5), Math.round(255 * 0.65)]);
  assert.deepEqual(Array.from(px.slice(8, 12)), [...jet(1), 255]);
  assert.deepEqual(Array.from(px.slice(12, 16)), [...jet(0), Math.round(255 * 0.15)]);
  assert.equal(camPixels(new Float32Array([5]), 0, 1, 0)[3], Math.round(255 * 0.15)); // no scale: zero
});
