// Grad-CAM view: the probe images with their Grad-CAM heat-maps at a training step (probe image
// underneath, heat-map on top with an opacity slider), each with its label, prediction and
// probability (misclassified ones marked); a "watch one image over training" strip with its
// probabilities and CAM peak at every logged step; and the attribution maps when logged.
// Two colourings: the logged overlay PNG (stretched per image), or the raw CAM on one scale
// per image across all steps (so a map growing stronger over training looks stronger).
// Routes: api/gradcam/step, api/gradcam/image, api/gradcam/maps (+ PNGs from api/runs/image).
import { bitmap, decodeFloat32, getJSON, peekBitmap, seriesJSON, stable } from "../api.js";
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
import { colors, drawCam, lineChart, paintBitmap } from "../draw.js";
import { className } from "../sprites.js";
import { frameScheduler, loadPanelSteps, panelSet, setLoading, stepSlider } from "../widgets.js";

export const id = "gradcam";
export const title = "Grad-CAM";

const layersOf = (run) => run.layers.filter((l) => l.kinds.gradcam).map((l) => l.name);

export function hasData(run) {
  return layersOf(run).length > 0;
}

const CARD = 112; // CSS px of one probe card

function stepData(run, layer, step) {
  return stable.get(
    `cam:${run}\u0000${layer}\u0000${step}`,
    () => getJSON("api/gradcam/step", { run, layer, step }),
    () => 4096,
  );
}

function mapsData(run, layer, step) {
  return stable.get(
    `cammaps:${run}\u0000${layer}\u0000${step}`,
    async () => {
      const answer = await getJSON("api/gradcam/maps", { run, layer, step });
      return { ...answer, values: decodeFloat32(answer.data), data: null };
    },
    (v) => v.values.length * 4,
  );
}

function percent(p) {
  return p === null || p === undefined ? "–" : `${Math.round(p * 100)}%`;
}

export function create(root, shell) {
  const st = { layer: null, step: null, image: 0, opacity: 0.6, colouring: "overlay", only: "all" };
  const scheduleDraw = frameScheduler(() => drawAll());
  let panels = [];
  let token = 0;

  const layerSelect = select(
    [],
    null,
    (v) => {
      st.layer = v;
      shell.busy(update());
    },
    { class: "layer", "aria-label": "layer" },
  );
  const slider = stepSlider((step) => {
    st.step = step;
    scheduleDraw();
  });
  const opacity = h("input", {
    type: "range",
    min: "0",
    max: "1",
    step: "0.05",
    value: String(st.opacity),
    class: "opacity-range",
    "aria-label": "heat-map opacity",
  });
  const opacityReadout = h("output", { class: "opacity-readout", text: percent(st.opacity) });
  opacity.addEventListener("input", () => {
    st.opacity = Number(opacity.value);
    opacityReadout.textContent = percent(st.opacity);
    applyOpacity();
  });
  const colouring = toggle(
    [
      { value: "overlay", label: "logged overlay" },
      { value: "raw", label: "raw CAM, shared scale" },
    ],
    st.colouring,
    (v) => {
      st.colouring = v;
      drawAll();
    },
    { class: "colouring", "aria-label": "heat-map colouring" },
  );
  colouring.title =
    "Logged overlay: each map stretched to its own range (shows where). Raw CAM: one colour scale per image over all steps (shows how strongly, comparable over training).";
  const only = toggle(
    [
      { value: "all", label: "all" },
      { value: "wrong", label: "misclassified" },
    ],
    st.only,
    (v) => {
      st.only = v;
      drawAll();
    },
    { class: "only", "aria-label": "which images" },
  );
  const controls = h(
    "div",
    { class: "controls" },
    field("Layer", layerSelect),
    slider.el,
    field("Heat-map opacity", h("span", { class: "opacity-box" }, opacity, opacityReadout)),
    field("Colouring", colouring),
    field("Show", only),
  );
  const panelRow = h("div", { class: "panels" });
  const runPanels = panelSet(panelRow, makePanel, {
    keep: (p) => (p.watchKey = ""), // new steps may have arrived: refresh the strip
  });
  setChildren(root, controls, panelRow);
  root.style.setProperty("--cam-opacity", String(st.opacity));

  function applyOpacity() {
    root.style.setProperty("--cam-opacity", String(st.opacity));
    root.dataset.opacity = String(st.opacity);
  }
  applyOpacity();

  function makePanel(run, layer) {
    const p = { run, layer, steps: [], wanted: null, cards: [], watchKey: "" };
    p.note = h("div", { class: "panel-note" });
    p.grid = h("div", { class: "cam-grid", role: "listbox", "aria-label": "probe images" });
    p.figure = h("div", { class: "figure" }, p.grid);
    p.watchTitle = h("div", { class: "chart-title watch-title" });
    p.strip = h("div", { class: "watch-strip" });
    p.chart = h("canvas", { class: "chart watch-chart" });
    p.attributions = h("div", { class: "attribution-row" });
    p.watch = h("section", { class: "watch" }, p.watchTitle, p.strip, p.chart, p.attributions);
    p.el = h(
      "article",
      { class: "panel cam-panel", dataset: { run: run.name } },
      h("h3", { class: "panel-title", text: run.name }),
      p.note,
      p.figure,
      p.watch,
    );
    return p;
  }

  async function update() {
    const my = ++token;
    const runs = shell.selectedRuns();
    const layers = [...new Set(runs.flatMap(layersOf))].sort(naturalCompare);
    if (!layers.length) {
      controls.hidden = true;
      panels = runPanels.reset();
      setChildren(
        panelRow,
        message(
          "empty",
          `No Grad-CAM logged in ${runNames(runs)}`,
          h("p", {
            text: 'Pass probe=(images, labels) to CNNVizCallback: it then logs the Grad-CAM of the probe images at the last conv layer every 200 steps (gradcam_layers=[...] and every_n_steps={"gradcam": N} to choose; attributions=["saliency", "occlusion"] adds attribution maps).',
          }),
        ),
      );
      return;
    }
    controls.hidden = false;
    if (!layers.includes(st.layer)) st.layer = layers[0];
    fillSelect(layerSelect, layers, st.layer);
    const layer = st.layer;
    panels = runPanels.sync(runs, layer);
    await loadPanelSteps(panels, "gradcam", layer, () => my === token);
    if (my !== token) return;
    st.step = slider.setSteps(unionSteps(...panels.map((p) => p.steps)), st.step);
    drawAll();
  }

  function drawAll() {
    for (const p of panels) drawPanel(p);
  }

  async function drawPanel(p) {
    if (!p.steps.length) {
      p.note.textContent = "No Grad-CAM logged for this layer in this run.";
      setChildren(p.grid);
      p.watch.hidden = true;
      return;
    }
    const i = atOrBefore(p.steps, st.step);
    const step = p.steps[i];
    p.wanted = step;
    const my = token;
    const key = `cam:${p.run.name}\u0000${p.layer}\u0000${step}`;
    try {
      if (!stable.has(key)) setLoading(p.figure, true);
      const data = await stepData(p.run.name, p.layer, step);
      if (p.wanted !== step || my !== token) return;
      const urls = data.images.map((x) => x.overlay);
      const probeUrls = data.probe ? data.probe.images : [];
      const raw = st.colouring === "raw" && data.cam_shape;
      const ready =
        urls.every((u) => peekBitmap(u)) &&
        probeUrls.every((u) => peekBitmap(u)) &&
        (!raw || stable.has(`cammaps:${p.run.name}\u0000${p.layer}\u0000${step}`));
      if (!ready) setLoading(p.figure, true);
      const [overlays, probes, maps] = await Promise.all([
        Promise.all(urls.map((u) => bitmap(u))),
        Promise.all(probeUrls.map((u) => bitmap(u))),
        raw ? mapsData(p.run.name, p.layer, step) : null,
      ]);
      if (p.wanted !== step || my !== token) return;
      setLoading(p.figure, false);
      paint(p, data, overlays, probes, maps, step);
      drawWatch(p, data);
      prefetch(p, i);
    } catch (error) {
      setLoading(p.figure, false);
      p.note.textContent = `Could not load step ${step}: ${error.message}`;
    }
  }

  function prefetch(p, i) {
    for (const j of [i + 1, i - 1]) {
      if (j < 0 || j >= p.steps.length) continue;
      stepData(p.run.name, p.layer, p.steps[j])
        .then((d) => Promise.all(d.images.map((x) => bitmap(x.overlay))))
        .catch(() => {});
    }
  }

  function caption(data, item) {
    const names = data.class_names;
    const lines = [];
    const label = item.label !== null && item.label !== undefined ? item.label : item.target;
    lines.push(
      h("span", { class: "cam-label", text: `#${item.index} ${className(names, label) || ""}`.trim() }),
    );
    if (item.predicted !== null && item.predicted !== undefined) {
      const wrong = item.misclassified === true;
      lines.push(
        h("span", {
          class: wrong ? "cam-pred wrong" : item.misclassified === false ? "cam-pred right" : "cam-pred",
          text: `${wrong ? "✗" : item.misclassified === false ? "✓" : "→"} ${className(names, item.predicted)} ${percent(item.probability)}`,
          title: `predicted ${className(names, item.predicted)} with probability ${formatNumber(item.probability, 3)}; probability of the ${item.label !== null ? "label" : "target"}: ${formatNumber(item.target_probability, 3)}`,
        }),
      );
    }
    return lines;
  }

  function paint(p, data, overlays, probes, maps, step) {
    const wrongCount = data.images.filter((x) => x.misclassified === true).length;
    const judged = data.images.filter((x) => x.misclassified !== null).length;
    const parts = [step === st.step ? `step ${step}` : `step ${step} (last logged at or before ${st.step})`];
    if (judged) parts.push(`${judged - wrongCount} of ${judged} probe images classified correctly`);
    if (!probes.length) parts.push("probe images not logged: heat-maps shown alone");
    p.note.textContent = parts.join(" · ");
    p.el.dataset.step = String(step);
    const shown = data.images.filter((x) => st.only === "all" || x.misclassified === true);
    if (st.image >= data.images.length) st.image = 0;
    const cards = shown.map((item) => {
      const i = item.index;
      const base = h("canvas", { class: "cam-base" });
      const top = h("canvas", { class: "cam-overlay" });
      const probe = probes[Math.min(i, probes.length - 1)];
      const dpr = window.devicePixelRatio || 1;
      if (probe) paintBitmap(base, probe, CARD * dpr, CARD * dpr);
      else base.hidden = true;
      if (maps && maps.shape && i < maps.shape[0]) {
        top.width = top.height = Math.round(CARD * dpr);
        const [, mh, mw] = maps.shape;
        drawCam(top, maps.values, i * mh * mw, mh, mw, maps.scale[i] || 0);
      } else {
        paintBitmap(top, overlays[i], CARD * dpr, CARD * dpr);
      }
      top.classList.toggle("alone", !probe);
      const stack = h("div", { class: "cam-stack" }, base, top);
      return h(
        "button",
        {
          type: "button",
          role: "option",
          class: `cam-card${item.misclassified === true ? " misclassified" : ""}${i === st.image ? " on" : ""}`,
          "aria-selected": String(i === st.image),
          dataset: { index: String(i) },
          title: "Watch this image over training",
          on: { click: () => choose(i) },
        },
        stack,
        h("span", { class: "cam-caption" }, caption(data, item)),
      );
    });
    if (!cards.length)
      cards.push(
        h("p", {
          class: "hint",
          text:
            st.only === "wrong"
              ? `No misclassified probe image at step ${step}.`
              : "No probe images at this step.",
        }),
      );
    setChildren(p.grid, cards);
    p.grid.dataset.step = String(step);
    p.grid.dataset.colouring = maps ? "raw" : "overlay";
  }

  function choose(i) {
    st.image = i;
    for (const p of panels) p.watchKey = "";
    drawAll();
  }

  async function drawWatch(p, data) {
    const index = Math.min(st.image, data.images.length - 1);
    if (index < 0) {
      p.watch.hidden = true;
      return;
    }
    p.watch.hidden = false;
    const key = `${index}|${p.steps.length}|${p.steps[p.steps.length - 1]}`;
    const my = token;
    let watch = p.watchData;
    if (p.watchKey !== key) {
      try {
        watch = await seriesJSON("api/gradcam/image", {
          run: p.run.name,
          layer: p.layer,
          index,
          limit: panels.length > 1 ? 12 : 24,
        });
      } catch (error) {
        if (my === token)
          setChildren(
            p.strip,
            h("p", { class: "hint", text: `Could not load this image's history: ${error.message}` }),
          );
        return;
      }
      if (my !== token || Math.min(st.image, data.images.length - 1) !== index) return;
      p.watchKey = key;
      p.watchData = watch;
      buildStrip(p, watch);
    }
    markStrip(p, data.step);
    drawWatchChart(p, watch, data.step);
    drawAttributions(p, data, index);
  }

  function buildStrip(p, watch) {
    const names = watch.class_names;
    const label = className(names, watch.label);
    p.watchTitle.textContent = `Probe #${watch.index}${label ? ` (${label})` : ""} over training — ${watch.steps.length} logged steps${watch.strip.length < watch.steps.length ? `, ${watch.strip.length} shown` : ""}; click one to go to its step`;
    const items = watch.strip.map((entry) => {
      const thumb = h("canvas", { class: "watch-thumb", width: "56", height: "56" });
      const at = watch.steps.indexOf(entry.step);
      const wrong =
        watch.label !== null && watch.predicted[at] !== null && watch.predicted[at] !== watch.label;
      const item = h(
        "button",
        {
          type: "button",
          class: `watch-item${wrong ? " misclassified" : ""}`,
          dataset: { step: String(entry.step) },
          title: `step ${entry.step}: predicted ${className(names, watch.predicted[at]) || "?"} (${percent(watch.probability[at])})`,
          on: { click: () => slider.select(entry.step) },
        },
        thumb,
        h("span", { text: String(entry.step) }),
      );
      bitmap(entry.overlay)
        .then((b) => {
          const ctx = thumb.getContext("2d");
          ctx.imageSmoothingEnabled = false;
          ctx.drawImage(b, 0, 0, 56, 56);
          thumb.dataset.drawn = "true";
        })
        .catch(() => {});
      return item;
    });
    setChildren(p.strip, items);
  }

  function markStrip(p, step) {
    let best = null;
    for (const item of p.strip.children) {
      const s = Number(item.dataset.step);
      if (s <= step && (best === null || s > Number(best.dataset.step))) best = item;
    }
    for (const item of p.strip.children) item.classList.toggle("on", item === best);
  }

  function drawWatchChart(p, watch, step) {
    const c = colors();
    const peak = Math.max(0, ...watch.cam_max.filter((v) => v !== null && Number.isFinite(v)));
    const lines = [
      {
        xs: watch.steps,
        ys: watch.target_probability,
        color: c.series[2],
        label: watch.label !== null ? "p(label)" : "p(target)",
        width: 2,
      },
      { xs: watch.steps, ys: watch.probability, color: c.series[1], label: "p(predicted)", dash: [4, 3] },
    ];
    if (peak > 0)
      lines.push({
        xs: watch.steps,
        ys: watch.cam_max.map((v) => (v === null ? null : v / peak)),
        color: c.series[4],
        label: `CAM peak ÷ ${formatNumber(peak, 3)}`,
        width: 1,
      });
    lineChart(p.chart, {
      lines,
      marker: step,
      yRange: [0, 1],
      width: panels.length > 1 ? 380 : 560,
      height: 130,
    });
  }

  async function drawAttributions(p, data, index) {
    const maps = (data.attributions || []).filter((a) => index < a.images.length);
    const key = `${index}|${data.step}|${maps.map((a) => a.images[index]).join("|")}`;
    if (p.attributionKey === key) return; // already shown: no flicker while the slider moves
    p.attributionKey = key;
    if (!maps.length) {
      setChildren(p.attributions);
      return;
    }
    const figures = [];
    const probeUrl = data.probe && data.probe.images[Math.min(index, data.probe.images.length - 1)];
    const entries = [
      ...(probeUrl ? [{ label: "image", url: probeUrl }] : []),
      { label: `Grad-CAM (step ${data.step})`, url: data.images[index].overlay },
      ...maps.map((a) => ({
        label: `${a.method.replace(/_/g, " ")} (step ${a.step})`,
        url: a.images[index],
      })),
    ];
    for (const entry of entries) {
      const canvas = h("canvas", { class: "attribution-map" });
      figures.push(h("figure", { class: "attribution" }, canvas, h("figcaption", { text: entry.label })));
      bitmap(entry.url)
        .then((b) => {
          paintBitmap(canvas, b, 96 * (window.devicePixelRatio || 1), 96 * (window.devicePixelRatio || 1));
          canvas.dataset.drawn = "true";
        })
        .catch(() => {});
    }
    setChildren(
      p.attributions,
      h("div", { class: "chart-title", text: `Attribution maps of probe #${index}` }),
      h("div", { class: "attribution-figures" }, figures),
    );
  }

  return {
    update,
    redraw: drawAll,
    destroy() {
      token++;
      slider.stop();
      scheduleDraw.cancel();
    },
  };
}
