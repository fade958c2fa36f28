// Embedding view, DOM and canvas: the scatter of up to 50,000 points, misclassified points ringed,
// hover with the image's thumbnail (its atlas loaded when first needed), wheel zoom, drag pan,
// double-click reset, the animation from one logged map to the next, and the class legend.
// Points are written into an offscreen layer (stamps.js) that covers the view and a margin around
// it; while a drag or a wheel gesture goes on, each frame only redraws that layer moved and scaled
// (one drawImage), and the points are stamped again at the new zoom when the gesture ends.
// Never fetches: the view hands the map's data and the sprites in.
import { categorical } from "../../colors.js";
import { eventPoint, h, setChildren } from "../../dom.js";
import { colors, sizeCanvas } from "../../draw.js";
import { className } from "../../format.js";
import { cell, drawThumb } from "../../sprites.js";
import { fillPixels, rgbOf, stamp, stampMasks } from "./stamps.js";

const ANIMATION_MS = 450;
const CELL = 12; // px of the hover grid
const HOVER_PX = 8;
const MARGIN = 0.25; // of the view's width and height, on each side of the points layer
const SETTLE_MS = 150; // a wheel gesture has ended when no wheel event came for this long

/** Cubic ease-in-out, t in [0, 1]. */
export const ease = (t) => (t < 0.5 ? 4 * t * t * t : 1 - Math.pow(-2 * t + 2, 3) / 2);

/** Map coordinates -> CSS px: `bounds` [x0, x1, y0, y1] fitted in width×height (18 px margin, y up), then zoom {k, tx, ty}. */
export function mapTransform(bounds, zoom, width, height) {
  const [x0, x1, y0, y1] = bounds;
  const pad = 18;
  const s = Math.min(
    (width - 2 * pad) / Math.max(x1 - x0, 1e-9),
    (height - 2 * pad) / Math.max(y1 - y0, 1e-9),
  );
  const cx = (x0 + x1) / 2;
  const cy = (y0 + y1) / 2;
  const { k, tx, ty } = zoom;
  return {
    width,
    height,
    x: (x) => (width / 2 + (x - cx) * s) * k + tx,
    y: (y) => (height / 2 - (y - cy) * s) * k + ty,
  };
}

const cellKey = (gx, gy) => (gx + 4096) * 8192 + (gy + 4096); // numeric: no string per point

/** Visible points {sx, sy, visible} bucketed in CELL px squares, for hover look-ups. */
export function hoverGrid(screen, n) {
  const grid = new Map();
  for (let i = 0; i < n; i++) {
    if (!screen.visible[i]) continue;
    const key = cellKey(Math.floor(screen.sx[i] / CELL), Math.floor(screen.sy[i] / CELL));
    let list = grid.get(key);
    if (!list) grid.set(key, (list = []));
    list.push(i);
  }
  return grid;
}

/** Index of the visible point nearest to (x, y) CSS px within HOVER_PX, or null. */
export function nearestPoint(grid, screen, x, y) {
  const cx = Math.floor(x / CELL);
  const cy = Math.floor(y / CELL);
  let best = null;
  let bestD = HOVER_PX * HOVER_PX;
  for (let gx = cx - 1; gx <= cx + 1; gx++)
    for (let gy = cy - 1; gy <= cy + 1; gy++)
      for (const i of grid.get(cellKey(gx, gy)) || []) {
        const d = (screen.sx[i] - x) ** 2 + (screen.sy[i] - y) ** 2;
        if (d <= bestD) {
          bestD = d;
          best = i;
        }
      }
  return best;
}

/**
 * The maps of the view's panels. `st` holds what all panels share (colourBy, mark, hidden classes,
 * highlight, pinned); `env.panels()` the panels, `env.size()` the canvas size in CSS px.
 */
export function scatterMaps(st, env) {
  const m = { st, env };
  return {
    wire: (p) => wire(m, p),
    show: (p, data) => show(m, p, data),
    draw: (p) => draw(m, p),
    resetZoom: (p) => resetZoom(m, p),
    refresh: () => refresh(m),
    highlight: (id) => highlight(m, id),
    pin: (id) => pin(m, id),
  };
}

/** Colour class of point i (label or prediction). */
const keyOf = (m, data, i) => (m.st.colourBy === "label" && data.labels ? data.labels[i] : data.predicted[i]);

/** Radius in CSS px of a map's points: smaller when there are more. */
export const pointRadius = (n) => (n > 3000 ? 2 : n > 800 ? 3 : 4);

const masks = new Map();
function masksOf(radius, width = 0) {
  const key = `${radius}:${width}`;
  if (!masks.has(key)) masks.set(key, stampMasks(radius, width));
  return masks.get(key);
}

/**
 * The panel's offscreen points layer (`p.pointsLayer`: `p.layer` is the model layer the map is of),
 * sized for the view (width × height CSS px) and its margin.
 */
function pointsLayerOf(p, width, height, dpr) {
  const ox = Math.round(width * MARGIN);
  const oy = Math.round(height * MARGIN);
  const w = Math.max(1, Math.round((width + 2 * ox) * dpr));
  const hgt = Math.max(1, Math.round((height + 2 * oy) * dpr));
  let L = p.pointsLayer;
  if (!L || L.w !== w || L.h !== hgt) {
    const canvas = document.createElement("canvas");
    canvas.width = w;
    canvas.height = hgt;
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    L = { canvas, ctx, image: ctx.createImageData(w, hgt), w, h: hgt };
    p.pointsLayer = L;
  }
  Object.assign(L, { ox, oy, dpr, width, height });
  return L;
}

/**
 * Stamp every shown point of the panel into its layer at the current zoom (and ring the
 * misclassified ones); screen positions (CSS px of the view) and visibility for hover come back.
 */
function renderLayer(m, p, T, n, r, c) {
  const dpr = window.devicePixelRatio || 1;
  const L = pointsLayerOf(p, T.width, T.height, dpr);
  const pixels = L.image.data;
  const bg = rgbOf(c.bg, L.ctx);
  fillPixels(pixels, bg);
  const disc = masksOf(r * dpr);
  const sx = new Float32Array(n);
  const sy = new Float32Array(n);
  const visible = new Uint8Array(n);
  const shown = new Uint8Array(n);
  const rgb = new Map();
  const { labels, predicted } = p.data;
  for (let i = 0; i < n; i++) {
    const x = p.pos[2 * i];
    const y = p.pos[2 * i + 1];
    const key = keyOf(m, p.data, i) ?? -1;
    if (!Number.isFinite(x) || !Number.isFinite(y) || m.st.hidden.has(key)) continue;
    sx[i] = T.x(x);
    sy[i] = T.y(y);
    if (!rgb.has(key)) rgb.set(key, rgbOf(categorical(key), L.ctx));
    shown[i] = stamp(pixels, L.w, L.h, disc, (sx[i] + L.ox) * dpr, (sy[i] + L.oy) * dpr, rgb.get(key), 0.85);
    if (sx[i] < -r || sy[i] < -r || sx[i] > T.width + r || sy[i] > T.height + r) continue;
    visible[i] = 1;
  }
  let wrong = 0;
  if (m.st.mark && labels) {
    // not a class colour: readable over every fill, light or dark theme
    const ringStamp = masksOf((r + 1.5) * dpr, 1.3 * dpr);
    const fg = rgbOf(c.fg, L.ctx);
    for (let i = 0; i < n; i++) {
      if (!shown[i] || labels[i] === null || predicted[i] === null || labels[i] === predicted[i]) continue;
      stamp(pixels, L.w, L.h, ringStamp, (sx[i] + L.ox) * dpr, (sy[i] + L.oy) * dpr, fg, 1);
      if (visible[i]) wrong++;
    }
  }
  L.ctx.putImageData(L.image, 0, 0);
  L.zoom = { ...p.zoom };
  return { screen: { sx, sy, visible, r }, wrong };
}

function ring(ctx, x, y, radius, colour, width) {
  ctx.strokeStyle = colour;
  ctx.lineWidth = width;
  ctx.beginPath();
  ctx.arc(x, y, radius, 0, 2 * Math.PI);
  ctx.stroke();
}

/** Where point i is drawn now (CSS px of the view), or null when it is not shown. */
function placeOf(m, p, T, i) {
  if (i === null || i === undefined || i < 0 || i >= p.data.count) return null;
  const x = p.pos[2 * i];
  const y = p.pos[2 * i + 1];
  if (!Number.isFinite(x) || !Number.isFinite(y) || m.st.hidden.has(keyOf(m, p.data, i) ?? -1)) return null;
  const at = [T.x(x), T.y(y)];
  return at[0] < -20 || at[1] < -20 || at[0] > T.width + 20 || at[1] > T.height + 20 ? null : at;
}

/**
 * The view's picture from the points layer: the layer moved and scaled from the zoom it was
 * rendered at to the current one (identity after a full draw), then the pinned, highlighted and
 * hovered rings. One drawImage, whatever the number of points: a frame of a pan or zoom gesture.
 */
function compose(m, p) {
  const L = p.pointsLayer;
  if (!L || !p.data || !p.pos) return;
  const { width, height } = m.env.size();
  const c = colors();
  const dpr = window.devicePixelRatio || 1;
  const canvas = p.canvas;
  const ctx =
    canvas.width === Math.round(width * dpr) && canvas.height === Math.round(height * dpr) && p.ctx
      ? p.ctx
      : (p.ctx = sizeCanvas(canvas, width, height));
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.fillStyle = c.bg;
  ctx.fillRect(0, 0, width, height);
  const f = p.zoom.k / L.zoom.k;
  ctx.imageSmoothingEnabled = f !== 1;
  ctx.drawImage(
    L.canvas,
    (-L.ox - L.zoom.tx) * f + p.zoom.tx,
    (-L.oy - L.zoom.ty) * f + p.zoom.ty,
    (L.w / L.dpr) * f,
    (L.h / L.dpr) * f,
  );
  const T = mapTransform(p.bounds, p.zoom, width, height);
  const r = pointRadius(p.data.count);
  const highlight = m.st.highlight ?? m.st.pinned;
  const lit = placeOf(m, p, T, highlight);
  if (lit) ring(ctx, lit[0], lit[1], r + 6, c.select, 2.5);
  const hovered = placeOf(m, p, T, p.hover);
  if (hovered) ring(ctx, hovered[0], hovered[1], r + 3, c.fg, 1.5);
  p.frames = (p.frames || 0) + 1;
  canvas.dataset.pinned = m.st.pinned === null ? "" : String(m.st.pinned);
}

/** Stamp the points at the current zoom and show them (`moving`: an animation frame, no hover grid). */
function draw(m, p, moving = false) {
  const data = p.data;
  if (!data || !p.pos) return;
  clearTimeout(p.settle);
  p.settle = null;
  const { width, height } = m.env.size();
  const T = mapTransform(p.bounds, p.zoom, width, height);
  const n = data.count;
  const { screen, wrong } = renderLayer(m, p, T, n, pointRadius(n), colors());
  p.screen = screen;
  p.grid = moving ? null : hoverGrid(screen, n);
  p.renders = (p.renders || 0) + 1;
  compose(m, p);
  p.canvas.dataset.step = String(data.step);
  p.canvas.dataset.visible = String(screen.visible.reduce((a, b) => a + b, 0));
  p.canvas.dataset.marked = String(wrong);
}

/** A frame of a pan or zoom gesture: the layer moved (no stamping); the points are stamped again once it settles. */
function move(m, p, settleMs = null) {
  if (!p.pointsLayer) return draw(m, p);
  p.screen = null; // the hover positions are the layer's, not the gesture's
  p.grid = null;
  compose(m, p);
  clearTimeout(p.settle);
  p.settle = settleMs === null ? null : setTimeout(() => draw(m, p), settleMs);
}

/** New data for a panel: animate from what is on screen to the new map. */
function show(m, p, data) {
  const same = p.data === data;
  const previous = p.data;
  p.data = data;
  p.el.dataset.step = String(data.step);
  const target = data.xy;
  const targetBounds = data.bounds || [0, 1, 0, 1];
  if (!previous || !p.pos || p.pos.length !== target.length) {
    p.pos = Float32Array.from(target);
    p.bounds = targetBounds.slice();
    legend(m, p);
    return draw(m, p);
  }
  if (same && !p.anim) return draw(m, p);
  legend(m, p); // counts per predicted class and the misclassified count change with the step
  if (p.anim) cancelAnimationFrame(p.anim.frame);
  const from = Float32Array.from(p.pos);
  const fromBounds = p.bounds.slice();
  const start = performance.now();
  p.canvas.dataset.animating = "true";
  const tick = (now) => {
    const t = Math.min(1, (now - start) / ANIMATION_MS);
    const e = ease(t);
    for (let i = 0; i < target.length; i++) {
      const a = from[i];
      const b = target[i];
      p.pos[i] = Number.isFinite(a) && Number.isFinite(b) ? a + (b - a) * e : b;
    }
    for (let k = 0; k < 4; k++) p.bounds[k] = fromBounds[k] + (targetBounds[k] - fromBounds[k]) * e;
    draw(m, p, t < 1);
    if (t < 1) p.anim = { frame: requestAnimationFrame(tick) };
    else {
      p.anim = null;
      p.canvas.dataset.animating = "false";
    }
  };
  p.anim = { frame: requestAnimationFrame(tick) };
}

function pick(p, x, y) {
  if (!p.screen) return null;
  if (!p.grid) p.grid = hoverGrid(p.screen, p.data.count);
  return nearestPoint(p.grid, p.screen, x, y);
}

function resetZoom(m, p) {
  p.zoom = { k: 1, tx: 0, ty: 0 };
  p.canvas.dataset.zoom = "1.000";
  draw(m, p);
}

/** Hover, zoom and pan on a panel's canvas. */
function wire(m, p) {
  const canvas = p.canvas;
  let drag = null;
  const local = (event) => eventPoint(event, canvas);
  canvas.addEventListener("pointermove", (event) => {
    const [x, y] = local(event);
    if (!drag) return hover(m, p, pick(p, x, y), x, y);
    p.zoom.tx = drag.tx + (x - drag.x);
    p.zoom.ty = drag.ty + (y - drag.y);
    drag.moved = drag.moved || Math.abs(x - drag.x) + Math.abs(y - drag.y) > 3;
    p.tip.hidden = true;
    move(m, p);
  });
  canvas.addEventListener("pointerleave", () => {
    if (!drag) hover(m, p, null);
  });
  canvas.addEventListener("pointerdown", (event) => {
    const [x, y] = local(event);
    drag = { x, y, tx: p.zoom.tx, ty: p.zoom.ty, moved: false };
    canvas.setPointerCapture(event.pointerId);
    canvas.classList.add("dragging");
  });
  const end = (event) => {
    if (!drag) return;
    const moved = drag.moved;
    drag = null;
    canvas.classList.remove("dragging");
    if (canvas.hasPointerCapture(event.pointerId)) canvas.releasePointerCapture(event.pointerId);
    if (moved || !p.screen) draw(m, p); // a click that jittered under 3 px moved the layer too
    if (moved) return;
    const i = pick(p, ...local(event));
    pin(m, i === m.st.pinned ? null : i);
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  canvas.addEventListener("wheel", (event) => zoomAt(m, p, event, local(event)), { passive: false });
  canvas.addEventListener("dblclick", () => resetZoom(m, p));
  // for the end-to-end test and debugging: CSS px position of point i
  canvas.pointAt = (i) => (p.screen && p.screen.visible[i] ? [p.screen.sx[i], p.screen.sy[i]] : null);
  // for the frame-rate test: full renders (points stamped) and frames shown (layer drawn) so far
  canvas.drawCounts = () => ({ renders: p.renders || 0, frames: p.frames || 0 });
}

function zoomAt(m, p, event, [x, y]) {
  event.preventDefault();
  const factor = Math.exp(-event.deltaY * (event.deltaMode === 1 ? 0.05 : 0.0015));
  const k = Math.min(64, Math.max(0.5, p.zoom.k * factor));
  const f = k / p.zoom.k;
  p.zoom = { k, tx: x - (x - p.zoom.tx) * f, ty: y - (y - p.zoom.ty) * f };
  p.tip.hidden = true;
  move(m, p, SETTLE_MS);
  p.canvas.dataset.zoom = k.toFixed(3);
}

function hover(m, p, i, x, y) {
  if (i === p.hover) {
    if (i !== null) placeTip(m, p, x, y);
    return;
  }
  p.hover = i;
  compose(m, p);
  if (i === null || i === undefined) {
    p.tip.hidden = true;
    p.canvas.dataset.hover = "";
    return;
  }
  const data = p.data;
  const names = data.class_names;
  const label = data.labels ? data.labels[i] : null;
  const predicted = data.predicted[i];
  const thumb = h("canvas", { class: "thumb tip-thumb" });
  const hasThumb = p.sheet && cell(p.sheet, i);
  if (hasThumb) drawThumb(thumb, p.sheet, i, { size: 72 });
  const wrong = label !== null && predicted !== null && label !== predicted;
  const mark = wrong ? " ✗" : label !== null ? " ✓" : "";
  setChildren(
    p.tip,
    hasThumb ? thumb : h("div", { class: "hint", text: "no thumbnail logged" }),
    h(
      "div",
      { class: "tip-text" },
      h("div", { class: "tip-id", text: `image #${i}` }),
      label !== null ? h("div", { class: "tip-label", text: `label: ${className(names, label)}` }) : null,
      predicted !== null
        ? h("div", {
            class: wrong ? "tip-pred wrong" : "tip-pred",
            text: `predicted: ${className(names, predicted)}${mark}`,
          })
        : null,
    ),
  );
  p.tip.hidden = false;
  placeTip(m, p, x, y);
  p.canvas.dataset.hover = String(i);
}

function placeTip(m, p, x, y) {
  const { width, height } = m.env.size();
  const w = p.tip.offsetWidth || 180;
  const hgt = p.tip.offsetHeight || 90;
  p.tip.style.left = `${Math.max(0, Math.min(width - w, x + 14))}px`;
  p.tip.style.top = `${Math.max(0, y + 14 + hgt > height ? y - hgt - 10 : y + 14)}px`;
}

function legend(m, p) {
  const data = p.data;
  if (!data) return;
  const counts = classCounts(data.count, (i) => keyOf(m, data, i));
  const items = [...counts.keys()].map((key) =>
    h(
      "button",
      {
        type: "button",
        class: `legend-item${m.st.hidden.has(key) ? " off" : ""}`,
        "aria-pressed": String(!m.st.hidden.has(key)),
        dataset: { class: String(key) },
        title: "Click to hide or show this class",
        on: { click: () => toggleClass(m, key) },
      },
      h("span", { class: "swatch", style: { background: categorical(key) } }),
      h("span", { class: "legend-name", text: key < 0 ? "unknown" : className(data.class_names, key) }),
      h("span", { class: "legend-count", text: String(counts.get(key)) }),
    ),
  );
  const by = m.st.colourBy === "label" && data.labels ? "Labels" : "Predicted classes";
  const ringed =
    m.st.mark && data.labels && data.misclassified
      ? h("span", {
          class: "legend-ring",
          title: "points whose predicted class differs from their label",
          text: `◯ misclassified (${data.misclassified})`,
        })
      : null;
  const all = m.st.hidden.size
    ? h("button", {
        type: "button",
        class: "legend-all link-button",
        text: "show all",
        on: { click: () => showAll(m) },
      })
    : null;
  setChildren(p.legend, h("span", { class: "field-label", text: `${by}:` }), items, ringed, all);
}

/** Legends and maps of every panel again (classes shown, colouring or theme changed). */
function refresh(m) {
  for (const p of m.env.panels()) {
    legend(m, p);
    draw(m, p);
  }
}

function toggleClass(m, key) {
  if (m.st.hidden.has(key)) m.st.hidden.delete(key);
  else m.st.hidden.add(key);
  refresh(m);
}

function showAll(m) {
  m.st.hidden.clear();
  refresh(m);
}

/** Ring image `id` on every map while it is hovered elsewhere (null: none). */
function highlight(m, id) {
  m.st.highlight = id;
  for (const q of m.env.panels()) compose(m, q);
}

/** Pin image `id` on every map (null: unpin). */
function pin(m, id) {
  m.st.pinned = id;
  for (const q of m.env.panels()) compose(m, q);
}

/** How many points fall in each class, classes in ascending order (-1 for none). */
export function classCounts(n, keyOf) {
  const counts = new Map();
  for (let i = 0; i < n; i++) {
    const key = keyOf(i) ?? -1;
    counts.set(key, (counts.get(key) || 0) + 1);
  }
  return new Map([...counts.entries()].sort((a, b) => a[0] - b[0]));
}
