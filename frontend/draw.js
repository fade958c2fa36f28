// Canvas drawing by hand: kernel grids from raw weights, line charts, heat-maps, CAMs.
// No library: the CSP of TensorBoard's plugin iframe blocks other origins, and these
// pictures are small enough to draw directly. The arithmetic (normalisation, layouts, colour
// scales) is in kernels.js and colors.js, which need no DOM.
import { camPixels, viridis } from "./colors.js";
import { cellOrigin, filterPixels, kernelGridLayout } from "./kernels.js";

/** Colours from the stylesheet (so dark and light themes apply to canvases too). */
export function colors() {
  const css = getComputedStyle(document.documentElement);
  const get = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
  return {
    fg: get("--fg", "#222"),
    muted: get("--muted", "#777"),
    grid: get("--grid", "#ddd"),
    bg: get("--panel", "#fff"),
    accent: get("--accent", "#f57c00"),
    select: get("--select", "#1e88e5"),
    dead: get("--dead", "#e53935"),
    series: [
      get("--c0", "#1e88e5"),
      get("--c1", "#f57c00"),
      get("--c2", "#43a047"),
      get("--c3", "#8e24aa"),
      get("--c4", "#e53935"),
      get("--c5", "#00897b"),
      get("--c6", "#6d4c41"),
      get("--c7", "#546e7a"),
    ],
  };
}

/** Size a canvas to CSS pixels × devicePixelRatio; returns a 2-D context scaled to CSS pixels. */
export function sizeCanvas(canvas, width, height) {
  const dpr = window.devicePixelRatio || 1;
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  canvas.width = Math.max(1, Math.round(width * dpr));
  canvas.height = Math.max(1, Math.round(height * dpr));
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return ctx;
}

// ------------------------------------------------------------------------------ kernels
function putFilter(img, pixels, f, x0, y0, scale) {
  const { kh, kw, ch, values } = pixels;
  const W = img.width;
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      const i = (f * kh * kw + y * kw + x) * ch;
      let r, g, b;
      if (ch === 3) [r, g, b] = [values[i], values[i + 1], values[i + 2]];
      else r = g = b = values[i];
      const nan = Number.isNaN(r) || Number.isNaN(g) || Number.isNaN(b);
      const R = nan ? 255 : Math.round(r * 255);
      const G = nan ? 0 : Math.round(g * 255);
      const B = nan ? 255 : Math.round(b * 255);
      for (let sy = 0; sy < scale; sy++) {
        let o = ((y0 + y * scale + sy) * W + x0 + x * scale) * 4;
        for (let sx = 0; sx < scale; sx++, o += 4) {
          img.data[o] = R;
          img.data[o + 1] = G;
          img.data[o + 2] = B;
          img.data[o + 3] = 255;
        }
      }
    }
  }
}

/**
 * Draw all filters of a layer as a grid; returns the layout for hit-testing clicks (hitKernelGrid).
 * `target` is the wanted width in CSS pixels; cells are integer-scaled (crisp pixels).
 */
export function drawKernelGrid(canvas, kernel, { normalization, inputMode, selected = -1, target = 420 }) {
  const pixels = filterPixels(kernel, normalization, inputMode);
  const layout = kernelGridLayout(pixels.out, pixels.kh, pixels.kw, target);
  const { width, height, cellW, cellH, scale, out } = layout;
  canvas.width = width;
  canvas.height = height;
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  const ctx = canvas.getContext("2d");
  const c = colors();
  const img = ctx.createImageData(width, height);
  const [br, bg, bb] = parseColor(c.bg);
  for (let o = 0; o < img.data.length; o += 4) {
    img.data[o] = br;
    img.data[o + 1] = bg;
    img.data[o + 2] = bb;
    img.data[o + 3] = 255;
  }
  for (let f = 0; f < out; f++) {
    const [x0, y0] = cellOrigin(layout, f);
    putFilter(img, pixels, f, x0, y0, scale);
  }
  ctx.putImageData(img, 0, 0);
  if (selected >= 0 && selected < out) {
    const [x0, y0] = cellOrigin(layout, selected);
    ctx.strokeStyle = c.select;
    ctx.lineWidth = 2;
    ctx.strokeRect(x0 - 1, y0 - 1, cellW + 2, cellH + 2);
  }
  return layout;
}

/** One filter, enlarged. */
export function drawFilter(canvas, kernel, index, { normalization, inputMode, size = 144 }) {
  const pixels = filterPixels(kernel, normalization, inputMode);
  const scale = Math.max(1, Math.floor(size / Math.max(pixels.kh, pixels.kw)));
  canvas.width = pixels.kw * scale;
  canvas.height = pixels.kh * scale;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(canvas.width, canvas.height);
  putFilter(img, pixels, index, 0, 0, scale);
  ctx.putImageData(img, 0, 0);
}

// ------------------------------------------------------------------------------ axes (pure)
/** A round tick spacing (1, 2 or 5 × 10^k) giving the number of intervals over `span` closest to `count`. */
export function niceStep(span, count = 4) {
  if (!(span > 0) || !Number.isFinite(span)) return 1;
  const power = 10 ** Math.floor(Math.log10(span / Math.max(1, count)));
  const candidates = [1, 2, 5, 10].map((m) => m * power);
  const off = (step) => Math.abs(Math.log(span / step / count));
  return candidates.reduce((best, step) => (off(step) < off(best) - 1e-9 ? step : best));
}

/** The multiples of `step` within [lo, hi], ascending (no "-0"). */
function multiples(lo, hi, step) {
  const ticks = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++)
    ticks.push(Number((k * step).toPrecision(12)) + 0);
  return ticks;
}

/** The multiples of a round spacing within [lo, hi] (about `count` intervals), ascending. */
export function niceTicks(lo, hi, count = 4) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  return hi <= lo ? [lo] : multiples(lo, hi, niceStep(hi - lo, count));
}

/** Training-step ticks over [lo, hi]: whole, round steps (a spacing of at least 1); one tick for one step. */
export function stepTicks(lo, hi, count = 4) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  return hi <= lo ? [lo] : multiples(lo, hi, Math.max(1, niceStep(hi - lo, count)));
}

/** A tick's label with as many decimals as the spacing `step` needs ("0.25", "100", "1e+6" stays short). */
export function tickLabel(value, step) {
  const decimals = step > 0 && step < 1 ? Math.min(6, Math.ceil(-Math.log10(step) - 1e-9)) : 0;
  return Math.abs(value) >= 1e6 ? value.toPrecision(2) : value.toFixed(decimals);
}

/**
 * The y range of the finite values in `series` (arrays, nulls skipped): widened by `margin` of its span
 * on each side, at least `minSpan` wide (a flat series sits in the middle), kept within `clamp` [lo, hi]
 * when given (e.g. smoothness cannot leave [-1, 1]); [0, 1] without any finite value.
 */
export function dataRange(series, { margin = 0.08, minSpan = 0.02, clamp = null } = {}) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const ys of series)
    for (const y of ys || [])
      if (y !== null && Number.isFinite(y)) [lo, hi] = [Math.min(lo, y), Math.max(hi, y)];
  if (!Number.isFinite(lo)) return clamp ? [...clamp] : [0, 1];
  const pad = Math.max((hi - lo) * margin, (minSpan - (hi - lo)) / 2, 0);
  let range = [lo - pad, hi + pad];
  if (clamp) {
    const span = Math.min(range[1] - range[0], clamp[1] - clamp[0]);
    if (range[0] < clamp[0]) range = [clamp[0], clamp[0] + span];
    if (range[1] > clamp[1]) range = [clamp[1] - span, clamp[1]];
  }
  return range;
}

// ------------------------------------------------------------------------------ line chart
/**
 * Line chart: lines = [{xs, ys, color, label, width, dash}]; bands = [{xs, lo, hi, color, label}]
 * (a filled spread drawn under the lines); marker = x of the current step. yRange = [lo, hi] or
 * null (from the data, lines and bands, with a small margin: dataRange; `yClamp` bounds it). The
 * x axis has ticks at round steps (one tick and a point for a single step; round values when the
 * xs are not whole numbers); the ticks shown are in
 * canvas.dataset.xTicks / yTicks. Returns {toX(px) -> data x} for clicks.
 */
export function lineChart(
  canvas,
  {
    lines,
    bands = [],
    marker = null,
    yRange = null,
    yClamp = null,
    width = 420,
    height = 150,
    yLabel = "",
    legend = true,
  },
) {
  const ctx = sizeCanvas(canvas, width, height);
  const c = colors();
  const pad = { l: 42, r: 10, t: 10, b: 22 };
  const xsAll = [...lines, ...bands].flatMap((l) => l.xs);
  let x0 = Math.min(...xsAll);
  let x1 = Math.max(...xsAll);
  if (!Number.isFinite(x0)) [x0, x1] = [0, 1];
  // Training steps get whole round ticks; other x values (e.g. a fraction of pixels) round values.
  const xTicks = xsAll.every(Number.isInteger) ? stepTicks(x0, x1) : niceTicks(x0, x1);
  const xStep = xTicks.length > 1 ? xTicks[1] - xTicks[0] : 1;
  if (x1 === x0) [x0, x1] = [x0 - 1, x1 + 1]; // one step: in the middle, with its own tick only
  const [y0, y1] =
    yRange ||
    dataRange([...lines.map((l) => l.ys), ...bands.flatMap((b) => [b.lo, b.hi])], { clamp: yClamp });
  const yTicks = niceTicks(y0, y1);
  const yStep = yTicks.length > 1 ? yTicks[1] - yTicks[0] : 1;
  canvas.dataset.xTicks = xTicks.join(" ");
  canvas.dataset.yTicks = yTicks.map((y) => tickLabel(y, yStep)).join(" ");
  canvas.dataset.yRange = `${y0} ${y1}`;
  const W = width - pad.l - pad.r;
  const H = height - pad.t - pad.b;
  const px = (x) => pad.l + ((x - x0) / (x1 - x0)) * W;
  const py = (y) => pad.t + (1 - (y - y0) / (y1 - y0)) * H;
  ctx.clearRect(0, 0, width, height);
  ctx.font = "11px system-ui, sans-serif";
  ctx.strokeStyle = c.grid;
  ctx.fillStyle = c.muted;
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const y of yTicks) {
    ctx.beginPath();
    ctx.moveTo(pad.l, Math.round(py(y)) + 0.5);
    ctx.lineTo(pad.l + W, Math.round(py(y)) + 0.5);
    ctx.stroke();
    ctx.fillText(tickLabel(y, yStep), pad.l - 4, py(y));
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const x of xTicks)
    ctx.fillText(tickLabel(x, xStep), Math.min(Math.max(px(x), pad.l + 10), pad.l + W - 10), pad.t + H + 5);
  for (const band of bands) {
    // The spread: a filled area between lo and hi (a dot-sized bar for a single step).
    ctx.fillStyle = band.color || c.series[0];
    ctx.globalAlpha = 0.22;
    const points = band.xs
      .map((x, i) => [x, band.lo[i], band.hi[i]])
      .filter(([, lo, hi]) => Number.isFinite(lo) && Number.isFinite(hi));
    if (points.length === 1) {
      const [x, lo, hi] = points[0];
      ctx.fillRect(px(x) - 3, py(hi), 6, Math.max(1, py(lo) - py(hi)));
    } else if (points.length > 1) {
      ctx.beginPath();
      points.forEach(([x, , hi], i) => (i ? ctx.lineTo(px(x), py(hi)) : ctx.moveTo(px(x), py(hi))));
      for (const [x, lo] of [...points].reverse()) ctx.lineTo(px(x), py(lo));
      ctx.closePath();
      ctx.fill();
    }
    ctx.globalAlpha = 1;
  }
  for (const line of lines) {
    ctx.strokeStyle = line.color || c.series[0];
    ctx.lineWidth = line.width || 1.5;
    ctx.setLineDash(line.dash || []);
    ctx.beginPath();
    let pen = false;
    line.xs.forEach((x, i) => {
      const y = line.ys[i];
      if (y === null || !Number.isFinite(y)) {
        pen = false;
        return;
      }
      if (pen) ctx.lineTo(px(x), py(y));
      else ctx.moveTo(px(x), py(y));
      pen = true;
    });
    ctx.stroke();
    if (line.xs.length === 1 && line.ys[0] !== null) {
      ctx.fillStyle = ctx.strokeStyle;
      ctx.beginPath();
      ctx.arc(px(line.xs[0]), py(line.ys[0]), 3, 0, 2 * Math.PI);
      ctx.fill();
    }
  }
  ctx.setLineDash([]);
  if (marker !== null && marker !== undefined) {
    ctx.strokeStyle = c.accent;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.moveTo(px(marker), pad.t);
    ctx.lineTo(px(marker), pad.t + H);
    ctx.stroke();
  }
  if (yLabel) {
    ctx.save();
    ctx.fillStyle = c.muted;
    ctx.translate(10, pad.t + H / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(yLabel, 0, 0);
    ctx.restore();
  }
  if (legend && lines.some((l) => l.label)) {
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    let y = pad.t + 8;
    const keyed = [...lines, ...bands.map((b) => ({ ...b, width: 6, band: true }))].filter((l) => l.label);
    for (const line of keyed) {
      const text = line.label;
      const tw = ctx.measureText(text).width;
      const x = pad.l + W - tw - 22;
      ctx.fillStyle = c.bg;
      ctx.globalAlpha = 0.8;
      ctx.fillRect(x - 4, y - 7, tw + 26, 14);
      ctx.globalAlpha = 1;
      ctx.strokeStyle = line.color || c.series[0];
      ctx.lineWidth = line.band ? 6 : 2;
      ctx.globalAlpha = line.band ? 0.35 : 1;
      ctx.beginPath();
      ctx.moveTo(x, y);
      ctx.lineTo(x + 14, y);
      ctx.stroke();
      ctx.globalAlpha = 1;
      ctx.fillStyle = c.fg;
      ctx.fillText(text, x + 18, y);
      y += 14;
    }
  }
  return { toX: (p) => x0 + ((p - pad.l) / W) * (x1 - x0) };
}

// ------------------------------------------------------------------------------ heat-map
const parsed = new Map();
function parseColor(css) {
  if (parsed.has(css)) return parsed.get(css);
  const probe = document.createElement("canvas").getContext("2d");
  probe.fillStyle = css;
  const hex = probe.fillStyle; // normalised "#rrggbb"
  const rgb = hex.startsWith("#") ? [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) : [128, 128, 128];
  parsed.set(css, rgb);
  return rgb;
}

/**
 * Filters (rows) × logged steps (columns) heat-map of activation rates in [0, 1]; cells with
 * rate <= threshold (dead filters) in the "dead" colour. Returns a hit-tester.
 */
export function heatmap(
  canvas,
  { rates, threshold, column = -1, selectedRow = -1, width = 420, maxHeight = 360 },
) {
  const steps = rates.length;
  const filters = steps ? rates[0].length : 0;
  const cellW = Math.max(1, Math.min(40, Math.floor((width - 2) / Math.max(steps, 1))));
  const cellH = Math.max(1, Math.min(12, Math.floor(maxHeight / Math.max(filters, 1))));
  const w = Math.max(steps * cellW, 1);
  const hgt = Math.max(filters * cellH, 1);
  canvas.width = w;
  canvas.height = hgt;
  canvas.style.width = `${w}px`;
  canvas.style.height = `${hgt}px`;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(w, hgt);
  const c = colors();
  const dead = parseColor(c.dead);
  for (let s = 0; s < steps; s++) {
    for (let f = 0; f < filters; f++) {
      const v = rates[s][f];
      const rgb = v === null ? [128, 128, 128] : v <= threshold ? dead : viridis(v);
      for (let y = f * cellH; y < (f + 1) * cellH; y++) {
        let o = (y * w + s * cellW) * 4;
        for (let x = 0; x < cellW; x++, o += 4) {
          img.data[o] = rgb[0];
          img.data[o + 1] = rgb[1];
          img.data[o + 2] = rgb[2];
          img.data[o + 3] = 255;
        }
      }
    }
  }
  ctx.putImageData(img, 0, 0);
  ctx.lineWidth = 2;
  if (column >= 0 && column < steps) {
    ctx.strokeStyle = c.accent;
    ctx.strokeRect(column * cellW + 1, 1, Math.max(cellW - 2, 1), hgt - 2);
  }
  if (selectedRow >= 0 && selectedRow < filters) {
    ctx.strokeStyle = c.select;
    ctx.strokeRect(1, selectedRow * cellH, w - 2, cellH);
  }
  return {
    hit: (x, y) => ({
      column: Math.min(steps - 1, Math.floor(x / cellW)),
      row: Math.min(filters - 1, Math.floor(y / cellH)),
    }),
  };
}

/** A horizontal colour bar (legend) for rates 0..1 with the dead colour at the left. */
export function rateLegend(canvas, width = 160) {
  const ctx = sizeCanvas(canvas, width, 12);
  const c = colors();
  ctx.fillStyle = c.dead;
  ctx.fillRect(0, 0, 12, 12);
  for (let x = 16; x < width; x++) {
    const [r, g, b] = viridis((x - 16) / (width - 17));
    ctx.fillStyle = `rgb(${r},${g},${b})`;
    ctx.fillRect(x, 0, 1, 12);
  }
}

// ------------------------------------------------------------------------------ CAM
/**
 * Raw CAM `[h, w]` (values from `data` at `offset`) coloured on a fixed scale (value / scale),
 * alpha growing with the value, drawn smoothly over `canvas` (its current size).
 */
export function drawCam(canvas, data, offset, h, w, scale) {
  const small = document.createElement("canvas");
  small.width = w;
  small.height = h;
  const sctx = small.getContext("2d");
  const img = sctx.createImageData(w, h);
  img.data.set(camPixels(data, offset, h * w, scale));
  sctx.putImageData(img, 0, 0);
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
}

/** Draw an ImageBitmap into a canvas of `width`×`height` device pixels, crisp (nearest neighbour). */
export function paintBitmap(canvas, bitmap, width, height) {
  canvas.width = Math.max(1, Math.round(width));
  canvas.height = Math.max(1, Math.round(height));
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
}
