// Activations view, the tiles: per-tile statistics read back from the grid picture, the order
// the tiles are shown in (channel, mean or max), where a tile lies in the logged grid and in
// the drawn one, and the per-channel bar chart that replaces tiles of 4×4 or smaller (a map of
// 2×2 pixels drawn as a tile is speckle). Pure but for the two draw functions.
//
// The logged grid divides every channel by its peak over the probe images (see
// analysis/activations.activation_grids), so a tile's mean and max are in units of that peak.
import { colors } from "../../draw.js";

export const BARS_UP_TO = 16; // maps of at most this many pixels (4×4) are drawn as a bar chart
export const MAX_UPSCALE = 16; // a small grid is never stretched beyond this (CSS px per grid px)

/** Number of tiles of a grid layout {channels, shown}. */
export const tileCount = (layout) => (layout.shown ? layout.shown.length : layout.channels);

/** Channel shown by tile `i` (the tiles may be a subset of the channels, `layout.shown`). */
export const channelOf = (layout, i) => (layout.shown ? layout.shown[i] : i);

/** Whether the layer's maps are small enough to be shown as a bar chart of per-channel means. */
export const barMode = (layout) => Boolean(layout.tile) && layout.tile[0] * layout.tile[1] <= BARS_UP_TO;

/** Top-left pixel of tile position `i` in a grid {nrow, padding, tile: [h, w]}. */
export function tileOrigin(layout, i) {
  const [th, tw] = layout.tile;
  const p = layout.padding;
  return [p + (i % layout.nrow) * (tw + p), p + Math.floor(i / layout.nrow) * (th + p)];
}

/** Tile position under (x, y) grid pixels, or -1 (padding counts as the tile to its right/below). */
export function tileIndexAt(layout, x, y) {
  const [th, tw] = layout.tile;
  const col = Math.floor((x - layout.padding) / (tw + layout.padding));
  const row = Math.floor((y - layout.padding) / (th + layout.padding));
  const i = row * layout.nrow + col;
  return col >= 0 && col < layout.nrow && row >= 0 && i < tileCount(layout) ? i : -1;
}

/**
 * Per tile, the mean and max of its pixels in [0, 1] (fractions of the channel's peak over the
 * probe images), from RGBA `pixels` of a grid `width` pixels wide (grey: the red byte is read).
 */
export function tileStats(pixels, width, layout) {
  const n = tileCount(layout);
  const [th, tw] = layout.tile;
  const mean = new Float64Array(n);
  const max = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const [x0, y0] = tileOrigin(layout, i);
    let sum = 0;
    let top = 0;
    for (let y = y0; y < y0 + th; y++)
      for (let x = x0; x < x0 + tw; x++) {
        const v = pixels[(y * width + x) * 4];
        sum += v;
        if (v > top) top = v;
      }
    mean[i] = sum / (th * tw) / 255;
    max[i] = top / 255;
  }
  return { mean, max };
}

/** Tile positions in display order: by channel ("channel"), or by "mean" or "max", highest first (ties by channel). */
export function tileOrder(stats, by) {
  const order = Array.from({ length: stats.mean.length }, (_, i) => i);
  if (by === "mean" || by === "max") {
    const v = stats[by];
    order.sort((a, b) => v[b] - v[a] || a - b);
  }
  return order;
}

/** Copy the tiles of `grid` (an image) into `canvas` in `order` (position k shows tile order[k]); same geometry. */
export function drawTiles(canvas, grid, layout, order) {
  canvas.width = grid.width;
  canvas.height = grid.height;
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  if (order.every((t, k) => t === k)) return ctx.drawImage(grid, 0, 0);
  ctx.fillStyle = "rgb(64,64,64)"; // the grid's padding grey (pad_value 0.25)
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  const [th, tw] = layout.tile;
  order.forEach((t, k) => {
    const [sx, sy] = tileOrigin(layout, t);
    const [dx, dy] = tileOrigin(layout, k);
    ctx.drawImage(grid, sx, sy, tw, th, dx, dy, tw, th);
  });
}

/** Bar geometry for `n` bars in `width` px: bars of `bar` px (at least 1; several bars per px never). */
export function barLayout(n, width) {
  const bar = Math.max(1, Math.floor(width / Math.max(n, 1)));
  return { bar, width: Math.max(bar * n, 1) };
}

/** Bar chart of `values` in [0, 1] in `order`, `height` px tall; the selected tile outlined. Returns its layout. */
export function drawBars(canvas, values, order, { width, height = 140, selected = -1 }) {
  const L = barLayout(order.length, width);
  canvas.width = L.width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  const c = colors();
  ctx.fillStyle = c.bg;
  ctx.fillRect(0, 0, L.width, height);
  ctx.fillStyle = c.grid;
  ctx.fillRect(0, height - 1, L.width, 1);
  order.forEach((t, k) => {
    const v = Math.max(0, Math.min(1, values[t]));
    ctx.fillStyle = t === selected ? c.select : c.series[0];
    const barH = Math.max(v > 0 ? 1 : 0, Math.round(v * (height - 2)));
    ctx.fillRect(k * L.bar, height - 1 - barH, L.bar, barH);
  });
  return L;
}
