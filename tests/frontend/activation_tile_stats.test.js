// Activation tiles (frontend/views/activations/tiles.js): where tiles lie, their statistics read back
// from the grid's pixels, their order, and the bar chart's mode and geometry.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  barLayout,
  barMode,
  channelOf,
  tileIndexAt,
  tileOrder,
  tileOrigin,
  tileStats,
} from "../../frontend/views/activations/tiles.js";

/**
 * An RGBA grid laid out as analysis/activations.tile_grid does: `nrow` tiles of h×w to a row, one
 * pixel of padding (grey 64) before each tile and after the last; tile t's pixels are values[t].
 */
function grid(values, nrow, [h, w]) {
  const rows = Math.ceil(values.length / nrow);
  const width = nrow * (w + 1) + 1;
  const height = rows * (h + 1) + 1;
  const pixels = new Uint8ClampedArray(width * height * 4).fill(64);
  values.forEach((tile, t) => {
    const x0 = 1 + (t % nrow) * (w + 1);
    const y0 = 1 + Math.floor(t / nrow) * (h + 1);
    tile.forEach((v, i) => {
      const o = ((y0 + Math.floor(i / w)) * width + x0 + (i % w)) * 4;
      pixels[o] = pixels[o + 1] = pixels[o + 2] = v;
    });
  });
  return { pixels, width };
}

const TILES = [
  [0, 0, 0, 0],
  [255, 0, 0, 0],
  [102, 102, 102, 102],
  [51, 153, 0, 255],
  [0, 0, 0, 51],
];
const LAYOUT = { nrow: 2, padding: 1, tile: [2, 2], channels: 5 };

test("tile statistics are the mean and max of each tile's pixels, padding excluded", () => {
  const { pixels, width } = grid(TILES, 2, [2, 2]);
  const { mean, max } = tileStats(pixels, width, LAYOUT);
  const near = (a, b) => a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) < 1e-12, `${i}: ${v} vs ${b[i]}`));
  near(mean, [0, 0.25, 0.4, 0.45, 0.05]);
  near(max, [0, 1, 0.4, 1, 0.2]);
});

test("tiles sort by channel, or by mean or max highest first with ties by channel", () => {
  const { pixels, width } = grid(TILES, 2, [2, 2]);
  const stats = tileStats(pixels, width, LAYOUT);
  assert.deepEqual(tileOrder(stats, "channel"), [0, 1, 2, 3, 4]);
  assert.deepEqual(tileOrder(stats, "mean"), [3, 2, 1, 4, 0]);
  assert.deepEqual(tileOrder(stats, "max"), [1, 3, 2, 4, 0]);
});

test("a pixel maps back to the tile drawn there; tiles of a capped grid name their channel", () => {
  for (let t = 0; t < 5; t++) {
    const [x, y] = tileOrigin(LAYOUT, t);
    assert.equal(tileIndexAt(LAYOUT, x, y), t);
    assert.equal(tileIndexAt(LAYOUT, x + 1, y + 1), t);
  }
  assert.equal(tileIndexAt(LAYOUT, 4, 7), -1); // row 2, column 1: past the fifth tile
  assert.equal(tileIndexAt(LAYOUT, 7, 1), -1); // past the last column
  const capped = { ...LAYOUT, channels: 2048, shown: [7, 9, 100, 2000, 2047] };
  assert.equal(channelOf(capped, 3), 2000);
  assert.equal(channelOf(LAYOUT, 3), 3);
});

test("maps of 4×4 or smaller are bars; bars are whole pixels and never overlap", () => {
  assert.equal(barMode({ tile: [4, 4] }), true);
  assert.equal(barMode({ tile: [2, 2] }), true);
  assert.equal(barMode({ tile: [5, 4] }), false);
  assert.equal(barMode({ tile: null }), false);
  assert.deepEqual(barLayout(2048, 640), { bar: 1, width: 2048 });
  assert.deepEqual(barLayout(256, 640), { bar: 2, width: 512 });
  assert.deepEqual(barLayout(10, 640), { bar: 64, width: 640 });
});
