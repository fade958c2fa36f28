// The Embedding map's pixel stamps (views/embedding/stamps.js): coverage masks of discs and rings,
// blending into an RGBA buffer, clipping at its edges, sub-pixel placement.
import assert from "node:assert/strict";
import { test } from "node:test";

import { SUBPIXEL, fillPixels, stamp, stampMasks } from "../../frontend/views/embedding/stamps.js";

const sum = (mask) => mask.reduce((a, b) => a + b, 0);

test("a disc mask covers pi r^2 pixels and a ring 2 pi R w, at every sub-pixel offset", () => {
  for (const r of [2, 3, 4, 6.5]) {
    const disc = stampMasks(r);
    assert.equal(disc.masks.length, SUBPIXEL * SUBPIXEL);
    assert.equal(disc.size, 2 * disc.half + 1);
    // 4 x 4 samples a pixel: the area is exact to about one sample per boundary pixel
    for (const mask of disc.masks) assert.ok(Math.abs(sum(mask) - Math.PI * r * r) < 0.12 * 2 * Math.PI * r);
  }
  const ring = stampMasks(3.5, 1.3);
  for (const mask of ring.masks) assert.ok(Math.abs(sum(mask) - 2 * Math.PI * 3.5 * 1.3) < 1.5);
  // the centre of a ring is empty, the centre of a disc full
  const c = ring.half * ring.size + ring.half;
  assert.equal(ring.masks[0][c], 0);
  assert.equal(stampMasks(3).masks[0][stampMasks(3).half * stampMasks(3).size + stampMasks(3).half], 1);
});

test("stamp blends a colour at alpha x coverage over an opaque buffer", () => {
  const w = 9;
  const h = 9;
  const pixels = new Uint8ClampedArray(w * h * 4);
  fillPixels(pixels, [200, 100, 0]);
  assert.deepEqual([...pixels.slice(0, 4)], [200, 100, 0, 255]);
  const disc = stampMasks(2);
  assert.equal(stamp(pixels, w, h, disc, 4.5, 4.5, [0, 0, 200], 0.5), true);
  const at = (x, y) => [...pixels.slice((y * w + x) * 4, (y * w + x) * 4 + 4)];
  // the centre pixel is fully covered: half the new colour, half the old
  assert.deepEqual(at(4, 4), [100, 50, 100, 255]);
  // a pixel 3 px away is outside the disc of radius 2: untouched
  assert.deepEqual(at(4, 1), [200, 100, 0, 255]);
  assert.deepEqual(at(0, 0), [200, 100, 0, 255]);
});

test("stamp clips at the buffer's edges and says when nothing was drawn", () => {
  const w = 6;
  const h = 5;
  const pixels = new Uint8ClampedArray(w * h * 4);
  fillPixels(pixels, [0, 0, 0]);
  const disc = stampMasks(2);
  assert.equal(stamp(pixels, w, h, disc, 0.5, 0.5, [255, 255, 255], 1), true); // a quarter inside
  assert.equal(pixels[0], 255);
  assert.equal(pixels[(4 * w + 5) * 4], 0);
  assert.equal(stamp(pixels, w, h, disc, -10, 2, [255, 255, 255], 1), false);
  assert.equal(stamp(pixels, w, h, disc, 3, 50, [255, 255, 255], 1), false);
  assert.equal(pixels.length, w * h * 4); // nothing written past the end
});

test("sub-pixel placement: a point half a pixel to the right shifts its coverage to the right", () => {
  const w = 12;
  const h = 12;
  const left = new Uint8ClampedArray(w * h * 4);
  const right = new Uint8ClampedArray(w * h * 4);
  fillPixels(left, [0, 0, 0]);
  fillPixels(right, [0, 0, 0]);
  const disc = stampMasks(2.5);
  stamp(left, w, h, disc, 6.0, 6.5, [255, 255, 255], 1);
  stamp(right, w, h, disc, 6.5, 6.5, [255, 255, 255], 1);
  const centroid = (pixels) => {
    let mass = 0;
    let x = 0;
    for (let i = 0; i < w * h; i++) {
      mass += pixels[4 * i];
      x += (i % w) * pixels[4 * i];
    }
    return x / mass;
  };
  assert.ok(Math.abs(centroid(right) - centroid(left) - 0.5) < 0.1, `${centroid(left)} ${centroid(right)}`);
  assert.ok(Math.abs(centroid(right) - 6.0) < 0.1); // pixel 6 spans [6, 7): its centre is 6.5
});
