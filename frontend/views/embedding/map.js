// Embedding view, DOM and canvas: the scatter of thousands of points (one path per class),
// misclassified points ringed, hover with the image's thumbnail, wheel zoom, drag pan,
// double-click reset, the animation from one logged map to the next, and the class legend.
// Never fetches: the view hands the map's data and the sprites in.
import { categorical } from "../../colors.js";
import { eventPoint, h, setChildren } from "../../dom.js";
import { colors, sizeCanvas } from "../../draw.js";
import { className } from "../../format.js";
import { cell, drawThumb } from "../../sprites.js";

const ANIMATION_MS = 450;
const CELL = 12; // px of the hover grid
const HOVER_PX = 8;

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

function project(m, p, T, n, r) {
  const groups = new Map();
  const sx = new Float32Array(n);
  const sy = new Float32Array(n);
  const visible = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const x = p.pos[2 * i];
    const y = p.pos[2 * i + 1];
    const key = keyOf(m, p.data, i) ?? -1;
    if (!Number.isFinite(x) || !Number.isFinite(y) || m.st.hidden.has(key)) continue;
    sx[i] = T.x(x);
    sy[i] = T.y(y);
    if (sx[i] < -r || sy[i] < -r || sx[i] > T.width + r || sy[i] > T.height + r) continue;
    visible[i] = 1;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(i);
  }
  return { groups, screen: { sx, sy, visible, r } };
}

function ring(ctx, screen, i, radius, colour, width) {
  ctx.strokeStyle = colour;
  ctx.lineWidth = width;
  ctx.beginPath();
  ctx.arc(screen.sx[i], screen.sy[i], radius, 0, 2 * Math.PI);
  ctx.stroke();
}

function ringWrong(ctx, data, screen, n) {
  let wrong = 0;
  ctx.beginPath();
  for (let i = 0; i < n; i++) {
    const { labels, predicted } = data;
    if (!screen.visible[i] || labels[i] === null || predicted[i] === null || labels[i] === predicted[i])
      continue;
    wrong++;
    ctx.moveTo(screen.sx[i] + screen.r + 1.5, screen.sy[i]);
    ctx.arc(screen.sx[i], screen.sy[i], screen.r + 1.5, 0, 2 * Math.PI);
  }
  ctx.stroke();
  return wrong;
}

function draw(m, p, moving = false) {
  const data = p.data;
  if (!data || !p.pos) return;
  const { width, height } = m.env.size();
  const T = mapTransform(p.bounds, p.zoom, width, height);
  const ctx = sizeCanvas(p.canvas, width, height);
  const c = colors();
  ctx.fillStyle = c.bg;
  ctx.fillRect(0, 0, width, height);
  const n = data.count;
  const r = n > 3000 ? 2 : n > 800 ? 3 : 4;
  const { groups, screen } = project(m, p, T, n, r);
  ctx.globalAlpha = 0.85;
  for (const [key, members] of groups) {
    ctx.fillStyle = categorical(key);
    ctx.beginPath();
    for (const i of members) {
      ctx.moveTo(screen.sx[i] + r, screen.sy[i]);
      ctx.arc(screen.sx[i], screen.sy[i], r, 0, 2 * Math.PI);
    }
    ctx.fill();
  }
  ctx.globalAlpha = 1;
  let wrong = 0;
  if (m.st.mark && data.labels) {
    ctx.strokeStyle = c.fg; // not a class colour: readable over every fill, light or dark theme
    ctx.lineWidth = 1.3;
    wrong = ringWrong(ctx, data, screen, n);
  }
  const highlight = m.st.highlight ?? m.st.pinned;
  if (highlight !== null && highlight >= 0 && highlight < n && screen.visible[highlight])
    ring(ctx, screen, highlight, r + 6, c.select, 2.5);
  if (p.hover !== undefined && p.hover !== null && screen.visible[p.hover])
    ring(ctx, screen, p.hover, r + 3, c.fg, 1.5);
  p.screen = screen;
  p.grid = moving ? null : hoverGrid(screen, n);
  p.canvas.dataset.step = String(data.step);
  p.canvas.dataset.pinned = m.st.pinned === null ? "" : String(m.st.pinned);
  p.canvas.dataset.visible = String(screen.visible.reduce((a, b) => a + b, 0));
  p.canvas.dataset.marked = String(wrong);
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
    draw(m, p, true);
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
    if (moved) return draw(m, p);
    const i = pick(p, ...local(event));
    pin(m, i === m.st.pinned ? null : i);
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  canvas.addEventListener("wheel", (event) => zoomAt(m, p, event, local(event)), { passive: false });
  canvas.addEventListener("dblclick", () => resetZoom(m, p));
  // for the end-to-end test and debugging: CSS px position of point i
  canvas.pointAt = (i) => (p.screen && p.screen.visible[i] ? [p.screen.sx[i], p.screen.sy[i]] : null);
}

function zoomAt(m, p, event, [x, y]) {
  event.preventDefault();
  const factor = Math.exp(-event.deltaY * (event.deltaMode === 1 ? 0.05 : 0.0015));
  const k = Math.min(64, Math.max(0.5, p.zoom.k * factor));
  const f = k / p.zoom.k;
  p.zoom = { k, tx: x - (x - p.zoom.tx) * f, ty: y - (y - p.zoom.ty) * f };
  p.tip.hidden = true;
  draw(m, p);
  p.canvas.dataset.zoom = k.toFixed(3);
}

function hover(m, p, i, x, y) {
  if (i === p.hover) {
    if (i !== null) placeTip(m, p, x, y);
    return;
  }
  p.hover = i;
  draw(m, p);
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
  for (const q of m.env.panels()) draw(m, q);
}

/** Pin image `id` on every map (null: unpin). */
function pin(m, id) {
  m.st.pinned = id;
  for (const q of m.env.panels()) draw(m, q);
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
