// Embedding view: the 2-D map (t-SNE by default) of the embedding probe set's CNN codes at a
// training step, drawn on a canvas (thousands of points), coloured by label or by prediction,
// misclassified points ringed; hover shows the image (cut from the sprite atlas) and its
// label; wheel zooms, drag pans, double-click resets; the step slider animates the points from
// one logged map to the next (the callback aligns successive maps, so clusters stay put);
// the legend toggles classes. Below: the Top images of a layer's filters (thumbnails with the
// receptive field of the maximum), the target of the "Top images" links of Filters/Patterns.
// Routes: api/embedding/points, api/embedding/sprites, api/embedding/top.
import { decodeFloat32, getJSON, seriesJSON, stable } from "../api.js";
import {
  atOrBefore,
  field,
  fillSelect,
  formatNumber,
  h,
  message,
  naturalCompare,
  runNames,
  select,
  setChildren,
  toggle,
  unionSteps,
} from "../dom.js";
import { categorical, colors, sizeCanvas } from "../draw.js";
import { cell, className, drawThumb, sprites } from "../sprites.js";
import { frameScheduler, panelSet, setLoading, stepSlider } from "../widgets.js";

export const id = "embedding";
export const title = "Embedding";

const layersOf = (run) => run.layers.filter((l) => l.kinds.embedding).map((l) => l.name);
const topLayersOf = (run) => run.layers.filter((l) => l.kinds.top_examples).map((l) => l.name);

export function hasData(run) {
  return layersOf(run).length > 0;
}

const METHODS = { tsne: "t-SNE", pca: "PCA", umap: "UMAP" };
const ANIMATION_MS = 450;
const CELL = 12; // px of the hover grid
const HOVER_PX = 8;

function pointsData(run, layer, step) {
  return stable.get(
    `emb:${run}\u0000${layer}\u0000${step}`,
    async () => {
      const answer = await getJSON("api/embedding/points", { run, layer, step });
      return { ...answer, xy: decodeFloat32(answer.xy) };
    },
    (v) => v.xy.length * 4 + v.count * 16,
  );
}

function topData(run, layer, step, channel) {
  const params = { run, layer, step };
  if (channel !== null && channel !== undefined) params.channel = channel;
  return stable.get(
    `top:${run}\u0000${layer}\u0000${step}\u0000${channel}`,
    () => getJSON("api/embedding/top", params),
    () => 8192,
  );
}

const ease = (t) => (t < 0.5 ? 4 * t * t * t : 1 - Math.pow(-2 * t + 2, 3) / 2);

export function create(root, shell) {
  const st = {
    layer: null,
    step: null,
    colourBy: "label",
    mark: true,
    hidden: new Set(),
    topLayer: null,
    filter: 0,
    highlight: null,
    pinned: null,
  };
  const scheduleDraw = frameScheduler(() => drawAll());
  let panels = [];
  let token = 0;
  let focusRun = null;

  const layerSelect = select(
    [],
    null,
    (v) => {
      st.layer = v;
      shell.busy(update());
    },
    { class: "layer", "aria-label": "embedding layer" },
  );
  const slider = stepSlider((step) => {
    st.step = step;
    scheduleDraw();
  });
  const colourBy = toggle(
    [
      { value: "label", label: "label" },
      { value: "predicted", label: "prediction" },
    ],
    st.colourBy,
    (v) => {
      st.colourBy = v;
      st.hidden.clear();
      for (const p of panels) {
        buildLegend(p);
        drawScatter(p);
      }
    },
    { class: "colour-by", "aria-label": "colour points by" },
  );
  const mark = h("input", {
    type: "checkbox",
    class: "mark-wrong",
    checked: true,
    "aria-label": "ring misclassified points",
  });
  mark.addEventListener("change", () => {
    st.mark = mark.checked;
    for (const p of panels) {
      buildLegend(p);
      drawScatter(p);
    }
  });
  const reset = h("button", {
    type: "button",
    class: "reset-zoom",
    text: "Reset zoom",
    on: { click: () => panels.forEach((p) => resetZoom(p)) },
  });
  const topLayerSelect = select(
    [],
    null,
    (v) => {
      st.topLayer = v;
      st.filter = 0;
      drawTops();
    },
    { class: "top-layer", "aria-label": "top images layer" },
  );
  const filterInput = h("input", {
    type: "number",
    min: "0",
    step: "1",
    value: "0",
    class: "top-filter",
    "aria-label": "filter",
  });
  filterInput.addEventListener("change", () => chooseFilter(Number(filterInput.value)));
  const prev = h("button", {
    type: "button",
    class: "step-button",
    text: "◀",
    title: "previous filter",
    on: { click: () => chooseFilter(st.filter - 1) },
  });
  const next = h("button", {
    type: "button",
    class: "step-button",
    text: "▶",
    title: "next filter",
    on: { click: () => chooseFilter(st.filter + 1) },
  });
  const topFields = h(
    "span",
    { class: "top-fields" },
    field("Top images of", topLayerSelect),
    field("filter", h("span", { class: "filter-picker" }, prev, filterInput, next)),
  );
  const controls = h(
    "div",
    { class: "controls" },
    field("Map", layerSelect),
    slider.el,
    field("Colour by", colourBy),
    h("label", { class: "field" }, mark, h("span", { class: "field-label", text: "ring misclassified" })),
    reset,
    topFields,
  );
  const panelRow = h("div", { class: "panels" });
  const runPanels = panelSet(panelRow, makePanel, {
    keep: (p) => (p.topSteps = []), // new steps may have arrived
    drop: (p) => p.anim && cancelAnimationFrame(p.anim.frame),
  });
  setChildren(root, controls, panelRow);

  // ------------------------------------------------------------------------------ panels
  function size() {
    return panels.length > 1 ? { width: 440, height: 360 } : { width: 680, height: 480 };
  }

  function makePanel(run, layer) {
    const p = {
      run,
      layer,
      steps: [],
      topSteps: [],
      data: null,
      pos: null,
      bounds: null,
      zoom: { k: 1, tx: 0, ty: 0 },
      anim: null,
      grid: null,
      sheet: null,
      wanted: null,
    };
    p.canvas = h("canvas", {
      class: "scatter",
      tabindex: "0",
      "aria-label": "embedding map: wheel to zoom, drag to pan, double-click to reset",
    });
    p.tip = h("div", { class: "scatter-tip", hidden: true });
    p.note = h("div", { class: "panel-note" });
    p.legend = h("div", { class: "legend", role: "group", "aria-label": "classes (click to hide or show)" });
    p.figure = h("div", { class: "figure scatter-figure" }, p.canvas, p.tip);
    p.topNote = h("div", { class: "panel-note top-note" });
    p.mosaic = h("canvas", {
      class: "top-mosaic",
      title: "Each filter's most activating image: click to choose the filter",
    });
    p.topStrip = h("div", { class: "top-strip top-examples" });
    p.top = h(
      "section",
      { class: "top-panel" },
      h("h4", { class: "section-title", text: "Top images" }),
      p.topNote,
      p.topStrip,
      h("div", { class: "chart-title", text: "Best image of every filter (click one)" }),
      p.mosaic,
    );
    p.el = h(
      "article",
      { class: "panel", dataset: { run: run.name } },
      h("h3", { class: "panel-title", text: run.name }),
      p.note,
      p.figure,
      p.legend,
      p.top,
    );
    wireScatter(p);
    p.mosaic.addEventListener("click", (event) => {
      if (!p.mosaicLayout) return;
      const rect = p.mosaic.getBoundingClientRect();
      const L = p.mosaicLayout;
      const col = Math.floor((event.clientX - rect.left) / L.cell);
      const row = Math.floor((event.clientY - rect.top) / L.cell);
      const f = row * L.cols + col;
      if (col >= 0 && col < L.cols && f >= 0 && f < L.count) chooseFilter(f);
    });
    return p;
  }

  async function update() {
    const my = ++token;
    const runs = shell.selectedRuns();
    const intent = shell.takeIntent(id);
    const layers = [...new Set(runs.flatMap(layersOf))].sort(naturalCompare);
    if (!layers.length) {
      controls.hidden = true;
      panels = runPanels.reset();
      setChildren(
        panelRow,
        message(
          "empty",
          `No embedding logged in ${runNames(runs)}`,
          h("p", {
            text: "Pass embedding_probe=(images, labels) (a few hundred to a few thousand held-out images) to CNNVizCallback: it then maps their codes in 2-D with t-SNE every 1000 steps and at on_epoch_end, stable across steps, with thumbnails, and records each filter's top images for top_example_layers.",
          }),
        ),
      );
      return;
    }
    controls.hidden = false;
    if (!layers.includes(st.layer)) st.layer = layers[0];
    fillSelect(layerSelect, layers, st.layer);
    const topLayers = [...new Set(runs.flatMap(topLayersOf))].sort(naturalCompare);
    if (intent && topLayers.includes(intent.layer)) {
      st.topLayer = intent.layer;
      st.filter = Math.max(0, Number(intent.filter) || 0);
      focusRun = intent.run || null;
    }
    if (!topLayers.includes(st.topLayer)) st.topLayer = topLayers[0] || null;
    fillSelect(topLayerSelect, topLayers, st.topLayer);
    topFields.hidden = !topLayers.length;
    filterInput.value = String(st.filter);
    const layer = st.layer;
    panels = runPanels.sync(runs, layer);
    await Promise.all(
      panels.map(async (p) => {
        const has = p.run.layers.some((l) => l.name === layer && l.kinds.embedding);
        try {
          const [steps, sheet] = await Promise.all([
            has
              ? seriesJSON("api/runs/steps", { run: p.run.name, kind: "embedding", layer }).then(
                  (r) => r.steps,
                )
              : [],
            sprites(p.run).catch(() => null),
          ]);
          if (my !== token) return;
          p.steps = steps;
          p.sheet = sheet;
        } catch (error) {
          if (my === token) p.note.textContent = `Could not load: ${error.message}`;
        }
      }),
    );
    if (my !== token) return;
    st.step = slider.setSteps(unionSteps(...panels.map((p) => p.steps)), st.step);
    drawAll();
  }

  function drawAll() {
    for (const p of panels) loadStep(p);
    drawTops();
  }

  async function loadStep(p) {
    if (!p.steps.length) {
      p.note.textContent = "No embedding logged for this map in this run.";
      p.figure.hidden = true;
      return;
    }
    p.figure.hidden = false;
    const step = p.steps[atOrBefore(p.steps, st.step)];
    p.wanted = step;
    const my = token;
    try {
      if (!stable.has(`emb:${p.run.name}\u0000${p.layer}\u0000${step}`)) setLoading(p.figure, true);
      const data = await pointsData(p.run.name, p.layer, step);
      if (p.wanted !== step || my !== token) return;
      setLoading(p.figure, false);
      show(p, data);
      const i = p.steps.indexOf(step);
      for (const j of [i + 1, i - 1])
        if (j >= 0 && j < p.steps.length) pointsData(p.run.name, p.layer, p.steps[j]).catch(() => {});
    } catch (error) {
      setLoading(p.figure, false);
      p.note.textContent = `Could not load step ${step}: ${error.message}`;
    }
  }

  function describe(p, data) {
    const parts = [
      data.step === st.step ? `step ${data.step}` : `step ${data.step} (last logged at or before ${st.step})`,
    ];
    parts.push(`${METHODS[data.method] || data.method || "map"} of the inputs of ${data.layer}`);
    parts.push(`${data.count} images`);
    if (data.accuracy !== null && data.accuracy !== undefined)
      parts.push(`accuracy ${formatNumber(100 * data.accuracy, 1)}% (${data.misclassified} misclassified)`);
    p.note.textContent = parts.join(" · ");
  }

  /** New data for a panel: animate from what is on screen to the new map. */
  function show(p, data) {
    const same = p.data === data;
    const previous = p.data;
    p.data = data;
    describe(p, data);
    p.el.dataset.step = String(data.step);
    const target = data.xy;
    const targetBounds = data.bounds || [0, 1, 0, 1];
    if (!previous || !p.pos || p.pos.length !== target.length) {
      p.pos = Float32Array.from(target);
      p.bounds = targetBounds.slice();
      buildLegend(p);
      drawScatter(p);
      return;
    }
    if (same && !p.anim) {
      drawScatter(p);
      return;
    }
    buildLegend(p); // counts per predicted class and the misclassified count change with the step
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
      drawScatter(p, t < 1);
      if (t < 1) p.anim = { frame: requestAnimationFrame(tick) };
      else {
        p.anim = null;
        p.canvas.dataset.animating = "false";
      }
    };
    p.anim = { frame: requestAnimationFrame(tick) };
  }

  /** Colour class of point i (label or prediction). */
  function keyOf(data, i) {
    if (st.colourBy === "label" && data.labels) return data.labels[i];
    return data.predicted[i];
  }

  // ---------------------------------------------------------------------------- drawing
  function transform(p) {
    const { width, height } = size();
    const [x0, x1, y0, y1] = p.bounds;
    const pad = 18;
    const s = Math.min(
      (width - 2 * pad) / Math.max(x1 - x0, 1e-9),
      (height - 2 * pad) / Math.max(y1 - y0, 1e-9),
    );
    const cx = (x0 + x1) / 2;
    const cy = (y0 + y1) / 2;
    const { k, tx, ty } = p.zoom;
    return {
      width,
      height,
      x: (x) => (width / 2 + (x - cx) * s) * k + tx,
      y: (y) => (height / 2 - (y - cy) * s) * k + ty,
    };
  }

  function drawScatter(p, moving = false) {
    const data = p.data;
    if (!data || !p.pos) return;
    const T = transform(p);
    const ctx = sizeCanvas(p.canvas, T.width, T.height);
    const c = colors();
    ctx.fillStyle = c.bg;
    ctx.fillRect(0, 0, T.width, T.height);
    const n = data.count;
    const r = n > 3000 ? 2 : n > 800 ? 3 : 4;
    const groups = new Map();
    const sx = new Float32Array(n);
    const sy = new Float32Array(n);
    const visible = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const x = p.pos[2 * i];
      const y = p.pos[2 * i + 1];
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      const key = keyOf(data, i);
      if (st.hidden.has(key ?? -1)) continue;
      sx[i] = T.x(x);
      sy[i] = T.y(y);
      if (sx[i] < -r || sy[i] < -r || sx[i] > T.width + r || sy[i] > T.height + r) continue;
      visible[i] = 1;
      const k = key ?? -1;
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k).push(i);
    }
    ctx.globalAlpha = 0.85;
    for (const [key, members] of groups) {
      ctx.fillStyle = categorical(key);
      ctx.beginPath();
      for (const i of members) {
        ctx.moveTo(sx[i] + r, sy[i]);
        ctx.arc(sx[i], sy[i], r, 0, 2 * Math.PI);
      }
      ctx.fill();
    }
    ctx.globalAlpha = 1;
    let wrong = 0;
    if (st.mark && data.labels) {
      ctx.strokeStyle = c.fg; // not a class colour: readable over every fill, light or dark theme
      ctx.lineWidth = 1.3;
      ctx.beginPath();
      for (let i = 0; i < n; i++) {
        if (
          !visible[i] ||
          data.labels[i] === null ||
          data.predicted[i] === null ||
          data.labels[i] === data.predicted[i]
        )
          continue;
        wrong++;
        ctx.moveTo(sx[i] + r + 1.5, sy[i]);
        ctx.arc(sx[i], sy[i], r + 1.5, 0, 2 * Math.PI);
      }
      ctx.stroke();
    }
    const highlight = st.highlight ?? st.pinned;
    if (highlight !== null && highlight >= 0 && highlight < n && visible[highlight]) {
      ctx.strokeStyle = c.select;
      ctx.lineWidth = 2.5;
      ctx.beginPath();
      ctx.arc(sx[highlight], sy[highlight], r + 6, 0, 2 * Math.PI);
      ctx.stroke();
    }
    if (p.hover !== undefined && p.hover !== null && visible[p.hover]) {
      ctx.strokeStyle = c.fg;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      ctx.arc(sx[p.hover], sy[p.hover], r + 3, 0, 2 * Math.PI);
      ctx.stroke();
    }
    p.screen = { sx, sy, visible, r };
    p.grid = moving ? null : buildGrid(p.screen, n);
    p.canvas.dataset.step = String(data.step);
    p.canvas.dataset.visible = String(visible.reduce((a, b) => a + b, 0));
    p.canvas.dataset.marked = String(wrong);
  }

  const cellKey = (gx, gy) => (gx + 4096) * 8192 + (gy + 4096); // numeric: no string per point

  function buildGrid(screen, n) {
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
  function pick(p, x, y) {
    if (!p.screen) return null;
    if (!p.grid) p.grid = buildGrid(p.screen, p.data.count);
    const cx = Math.floor(x / CELL);
    const cy = Math.floor(y / CELL);
    let best = null;
    let bestD = HOVER_PX * HOVER_PX;
    for (let gx = cx - 1; gx <= cx + 1; gx++) {
      for (let gy = cy - 1; gy <= cy + 1; gy++) {
        for (const i of p.grid.get(cellKey(gx, gy)) || []) {
          const d = (p.screen.sx[i] - x) ** 2 + (p.screen.sy[i] - y) ** 2;
          if (d <= bestD) {
            bestD = d;
            best = i;
          }
        }
      }
    }
    return best;
  }

  // ------------------------------------------------------------------ hover, zoom and pan
  function wireScatter(p) {
    const canvas = p.canvas;
    let drag = null;
    const local = (event) => {
      const rect = canvas.getBoundingClientRect();
      return [event.clientX - rect.left, event.clientY - rect.top];
    };
    canvas.addEventListener("pointermove", (event) => {
      const [x, y] = local(event);
      if (drag) {
        p.zoom.tx = drag.tx + (x - drag.x);
        p.zoom.ty = drag.ty + (y - drag.y);
        drag.moved = drag.moved || Math.abs(x - drag.x) + Math.abs(y - drag.y) > 3;
        hideTip(p);
        drawScatter(p, true);
        return;
      }
      hover(p, pick(p, x, y), x, y);
    });
    canvas.addEventListener("pointerleave", () => {
      if (!drag) hover(p, null);
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
      if (moved) drawScatter(p);
      else {
        const [x, y] = local(event);
        const i = pick(p, x, y);
        st.pinned = i === st.pinned ? null : i;
        for (const q of panels) drawScatter(q);
      }
    };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    canvas.addEventListener(
      "wheel",
      (event) => {
        event.preventDefault();
        const [x, y] = local(event);
        const factor = Math.exp(-event.deltaY * (event.deltaMode === 1 ? 0.05 : 0.0015));
        const k = Math.min(64, Math.max(0.5, p.zoom.k * factor));
        const f = k / p.zoom.k;
        p.zoom = { k, tx: x - (x - p.zoom.tx) * f, ty: y - (y - p.zoom.ty) * f };
        hideTip(p);
        drawScatter(p);
        p.canvas.dataset.zoom = k.toFixed(3);
      },
      { passive: false },
    );
    canvas.addEventListener("dblclick", () => resetZoom(p));
    // for the end-to-end test and debugging: CSS px position of point i
    canvas.pointAt = (i) => (p.screen && p.screen.visible[i] ? [p.screen.sx[i], p.screen.sy[i]] : null);
  }

  function resetZoom(p) {
    p.zoom = { k: 1, tx: 0, ty: 0 };
    p.canvas.dataset.zoom = "1.000";
    drawScatter(p);
  }

  function hideTip(p) {
    p.tip.hidden = true;
  }

  function hover(p, i, x, y) {
    if (i === p.hover) {
      if (i !== null) placeTip(p, x, y);
      return;
    }
    p.hover = i;
    drawScatter(p);
    if (i === null || i === undefined) {
      hideTip(p);
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
              text: `predicted: ${className(names, predicted)}${wrong ? " ✗" : label !== null ? " ✓" : ""}`,
            })
          : null,
      ),
    );
    p.tip.hidden = false;
    placeTip(p, x, y);
    p.canvas.dataset.hover = String(i);
  }

  function placeTip(p, x, y) {
    const { width, height } = size();
    const w = p.tip.offsetWidth || 180;
    const hgt = p.tip.offsetHeight || 90;
    p.tip.style.left = `${Math.max(0, Math.min(width - w, x + 14))}px`;
    p.tip.style.top = `${Math.max(0, y + 14 + hgt > height ? y - hgt - 10 : y + 14)}px`;
  }

  // ------------------------------------------------------------------------------ legend
  function buildLegend(p) {
    const data = p.data;
    if (!data) return;
    const counts = new Map();
    for (let i = 0; i < data.count; i++) {
      const key = keyOf(data, i) ?? -1;
      counts.set(key, (counts.get(key) || 0) + 1);
    }
    const keys = [...counts.keys()].sort((a, b) => a - b);
    const items = keys.map((key) =>
      h(
        "button",
        {
          type: "button",
          class: `legend-item${st.hidden.has(key) ? " off" : ""}`,
          "aria-pressed": String(!st.hidden.has(key)),
          dataset: { class: String(key) },
          title: "Click to hide or show this class",
          on: { click: () => toggleClass(key) },
        },
        h("span", { class: "swatch", style: { background: categorical(key) } }),
        h("span", { class: "legend-name", text: key < 0 ? "unknown" : className(data.class_names, key) }),
        h("span", { class: "legend-count", text: String(counts.get(key)) }),
      ),
    );
    const by = st.colourBy === "label" && data.labels ? "Labels" : "Predicted classes";
    const ringed =
      st.mark && data.labels && data.misclassified
        ? h("span", {
            class: "legend-ring",
            title: "points whose predicted class differs from their label",
            text: `◯ misclassified (${data.misclassified})`,
          })
        : null;
    setChildren(
      p.legend,
      h("span", { class: "field-label", text: `${by}:` }),
      items,
      ringed,
      st.hidden.size
        ? h("button", {
            type: "button",
            class: "legend-all link-button",
            text: "show all",
            on: { click: () => showAll() },
          })
        : null,
    );
  }

  function toggleClass(key) {
    if (st.hidden.has(key)) st.hidden.delete(key);
    else st.hidden.add(key);
    for (const p of panels) {
      buildLegend(p);
      drawScatter(p);
    }
  }

  function showAll() {
    st.hidden.clear();
    for (const p of panels) {
      buildLegend(p);
      drawScatter(p);
    }
  }

  // --------------------------------------------------------------------------- top images
  function chooseFilter(f) {
    if (!Number.isFinite(f)) return;
    st.filter = Math.max(0, Math.floor(f));
    filterInput.value = String(st.filter);
    drawTops();
  }

  async function drawTops() {
    for (const p of panels) drawTop(p);
  }

  async function drawTop(p) {
    const layer = st.topLayer;
    const has = layer && p.run.layers.some((l) => l.name === layer && l.kinds.top_examples);
    p.top.hidden = !layer;
    if (!layer) return;
    if (!has) {
      p.topNote.textContent = `No top images logged for ${layer} in this run.`;
      setChildren(p.topStrip);
      p.mosaic.hidden = true;
      return;
    }
    const my = token;
    try {
      if (!p.topSteps.length || p.topLayer !== layer) {
        p.topSteps = (
          await seriesJSON("api/runs/steps", { run: p.run.name, kind: "top_examples", layer })
        ).steps;
        p.topLayer = layer;
      }
      if (my !== token || !p.topSteps.length) return;
      const step = p.topSteps[atOrBefore(p.topSteps, st.step)];
      p.topWanted = `${layer}|${step}|${st.filter}`;
      const wanted = p.topWanted;
      const overview = await topData(p.run.name, layer, step, null);
      if (wanted !== p.topWanted || my !== token) return;
      if (st.filter >= overview.filters) {
        st.filter = Math.max(0, overview.filters - 1);
        filterInput.value = String(st.filter);
      }
      filterInput.max = String(Math.max(0, overview.filters - 1));
      const detail = await topData(p.run.name, layer, step, st.filter);
      if (wanted !== p.topWanted || my !== token) return;
      paintTop(p, overview, detail);
      if (focusRun !== null && (focusRun === p.run.name || !panels.some((q) => q.run.name === focusRun))) {
        focusRun = null;
        p.top.scrollIntoView({ block: "start", behavior: "instant" });
        p.top.classList.add("flash");
        setTimeout(() => p.top.classList.remove("flash"), 1200);
      }
    } catch (error) {
      if (my === token) p.topNote.textContent = `Could not load top images: ${error.message}`;
    }
  }

  function paintTop(p, overview, detail) {
    const names = detail.class_names;
    p.topNote.textContent = `${detail.layer}, filter #${detail.channel} of ${detail.filters} · step ${detail.step}${detail.step > st.step ? " (first logged)" : ""} · the ${detail.examples.length} probe images that activate it most; the box is the receptive field of its maximum`;
    p.top.dataset.filter = String(detail.channel);
    p.top.dataset.layer = detail.layer;
    const items = detail.examples.map((ex) => {
      const canvas = h("canvas", { class: "thumb top-thumb" });
      if (p.sheet) drawThumb(canvas, p.sheet, ex.id, { size: 84, box: ex.box, imageSize: detail.image_size });
      const wrong = ex.label !== null && ex.predicted !== null && ex.label !== ex.predicted;
      const fig = h(
        "figure",
        {
          class: "top-example",
          dataset: { id: String(ex.id) },
          title: `image #${ex.id}: activation ${formatNumber(ex.activation, 3)} — hover to find it in the map, click to pin it`,
        },
        canvas,
        h(
          "figcaption",
          {},
          h("span", { text: formatNumber(ex.activation, 2) }),
          ex.label !== null
            ? h("span", {
                class: wrong ? "wrong" : "",
                text: ` · ${className(names, ex.label)}${wrong ? " ✗" : ""}`,
              })
            : null,
        ),
      );
      fig.addEventListener("mouseenter", () => highlight(ex.id));
      fig.addEventListener("mouseleave", () => highlight(null));
      fig.addEventListener("click", () => {
        st.pinned = st.pinned === ex.id ? null : ex.id;
        for (const q of panels) drawScatter(q);
      });
      return fig;
    });
    if (!items.length)
      items.push(h("p", { class: "hint", text: "No examples recorded for this filter yet." }));
    if (!p.sheet)
      items.push(
        h("p", { class: "hint", text: "Thumbnails need the sprites (logged with the first embedding)." }),
      );
    setChildren(p.topStrip, items);
    paintMosaic(p, overview);
  }

  function paintMosaic(p, overview) {
    const count = overview.best.length;
    p.mosaic.hidden = !count || !p.sheet;
    if (p.mosaic.hidden) return;
    const { width } = size();
    const cellSize = count > 128 ? 28 : 40;
    const cols = Math.max(1, Math.floor(width / cellSize));
    const rows = Math.ceil(count / cols);
    const ctx = sizeCanvas(p.mosaic, Math.min(count, cols) * cellSize, rows * cellSize);
    const c = colors();
    ctx.imageSmoothingEnabled = false;
    overview.best.forEach((ex, f) => {
      const x = (f % cols) * cellSize;
      const y = Math.floor(f / cols) * cellSize;
      const at = ex && cell(p.sheet, ex.id);
      if (at) ctx.drawImage(at.atlas, at.sx, at.sy, at.w, at.h, x + 1, y + 1, cellSize - 2, cellSize - 2);
      else {
        ctx.fillStyle = c.grid;
        ctx.fillRect(x + 1, y + 1, cellSize - 2, cellSize - 2);
      }
      if (f === st.filter) {
        ctx.strokeStyle = c.select;
        ctx.lineWidth = 3;
        ctx.strokeRect(x + 1.5, y + 1.5, cellSize - 3, cellSize - 3);
      }
    });
    p.mosaicLayout = { cols, cell: cellSize, count };
  }

  function highlight(imageId) {
    st.highlight = imageId;
    for (const p of panels) drawScatter(p);
  }

  return {
    update,
    redraw() {
      for (const p of panels) {
        buildLegend(p);
        drawScatter(p);
      }
      drawTops();
    },
    destroy() {
      token++;
      slider.stop();
      scheduleDraw.cancel();
      panels.forEach((p) => p.anim && cancelAnimationFrame(p.anim.frame));
    },
  };
}
