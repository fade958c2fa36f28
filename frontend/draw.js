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

// ------------------------------------------------------------------------------ line chart
/**
 * Line chart: lines = [{xs, ys, color, label, width, dash}]; marker = x of the current step.
 * yRange = [lo, hi] or null (from data). Returns {toX(px) -> data x} for clicks.
 */
export function lineChart(
  canvas,
  { lines, marker = null, yRange = null, width = 420, height = 150, yLabel = "", legend = true },
) {
  const ctx = sizeCanvas(canvas, width, height);
  const c = colors();
  const pad = { l: 42, r: 10, t: 10, b: 22 };
  const xsAll = lines.flatMap((l) => l.xs);
  let x0 = Math.min(...xsAll);
  let x1 = Math.max(...xsAll);
  if (!Number.isFinite(x0)) [x0, x1] = [0, 1];
  if (x1 === x0) [x0, x1] = [x0 - 1, x1 + 1];
  let [y0, y1] = yRange || [Infinity, -Infinity];
  if (!yRange) {
    for (const l of lines)
      for (const y of l.ys)
        if (y !== null && Number.isFinite(y)) [y0, y1] = [Math.min(y0, y), Math.max(y1, y)];
    if (!Number.isFinite(y0)) [y0, y1] = [0, 1];
    if (y1 === y0) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  }
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
  for (let i = 0; i <= 4; i++) {
    const y = y0 + ((y1 - y0) * i) / 4;
    ctx.beginPath();
    ctx.moveTo(pad.l, Math.round(py(y)) + 0.5);
    ctx.lineTo(pad.l + W, Math.round(py(y)) + 0.5);
    ctx.stroke();
    ctx.fillText(Math.abs(y1 - y0) >= 10 ? y.toFixed(0) : y.toFixed(2), pad.l - 4, py(y));
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (let i = 0; i <= 4; i++) {
    const x = x0 + ((x1 - x0) * i) / 4;
    ctx.fillText(String(Math.round(x)), Math.min(Math.max(px(x), pad.l + 10), pad.l + W - 10), pad.t + H + 5);
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
    for (const line of lines.filter((l) => l.label)) {
      const text = line.label;
      const tw = ctx.measureText(text).width;
      const x = pad.l + W - tw - 22;
      ctx.fillStyle = c.bg;
      ctx.globalAlpha = 0.8;
      ctx.fillRect(x - 4, y - 7, tw + 26, 14);
      ctx.globalAlpha = 1;
      ctx.strokeStyle = line.color || c.series[0];
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.moveTo(x, y);
      ctx.lineTo(x + 14, y);
      ctx.stroke();
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
