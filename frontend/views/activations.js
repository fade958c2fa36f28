// Activations view: for one probe image and a layer, the per-channel activation tiles at a
// chosen step, with the probe image beside them. Routes: api/activations/step (+ PNGs from
// api/runs/image, decoded once into ImageBitmaps and kept, so scrubbing back is instant).
import { bitmap, getJSON, peekBitmap, stable } from "../api.js";
import {
  atOrBefore,
  field,
  fillSelect,
  h,
  message,
  naturalCompare,
  runNames,
  select,
  setChildren,
  unionSteps,
} from "../dom.js";
import { colors } from "../draw.js";
import { frameScheduler, loadPanelSteps, panelSet, setLoading, stepSlider } from "../widgets.js";

export const id = "activations";
export const title = "Activations";

const layersOf = (run) => run.layers.filter((l) => l.kinds.activations).map((l) => l.name);

export function hasData(run) {
  return layersOf(run).length > 0;
}

/** JSON of api/activations/step for one logged step (never changes: cached with the images). */
function stepData(run, layer, step) {
  return stable.get(
    `act:${run}\u0000${layer}\u0000${step}`,
    () => getJSON("api/activations/step", { run, layer, step }),
    () => 2048,
  );
}

function labelText(probe, index) {
  if (!probe || !probe.labels || probe.labels[index] === undefined || probe.labels[index] === null) return "";
  const label = probe.labels[index];
  const name = probe.class_names && probe.class_names[label] !== undefined ? probe.class_names[label] : null;
  return name === null ? `label ${label}` : `${name} (${label})`;
}

export function create(root, shell) {
  const st = { layer: null, step: null, image: 0 };
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
  const strip = h("div", { class: "probe-strip", role: "listbox", "aria-label": "probe image" });
  const controls = h("div", { class: "controls" }, field("Layer", layerSelect), slider.el);
  const panelRow = h("div", { class: "panels" });
  const runPanels = panelSet(panelRow, makePanel);
  setChildren(
    root,
    controls,
    h("div", { class: "strip-box" }, h("div", { class: "field-label", text: "Probe image" }), strip),
    panelRow,
  );

  function makePanel(run, layer) {
    const p = { run, layer, steps: [], wanted: null };
    p.probe = h("canvas", { class: "probe-image" });
    p.probeLabel = h("div", { class: "probe-label" });
    p.grid = h("canvas", { class: "activation-grid" });
    p.hover = h("div", { class: "hover-readout", text: "Hover over a tile to see its channel." });
    p.grid.addEventListener("mousemove", (event) => hover(p, event));
    p.note = h("div", { class: "panel-note" });
    p.figure = h(
      "div",
      { class: "figure activation-figure" },
      h("figure", { class: "probe-figure" }, p.probe, p.probeLabel),
      h("figure", { class: "grid-figure" }, p.grid, p.hover),
    );
    p.el = h(
      "article",
      { class: "panel", dataset: { run: run.name } },
      h("h3", { class: "panel-title", text: run.name }),
      p.note,
      p.figure,
    );
    return p;
  }

  async function update() {
    const my = ++token;
    const runs = shell.selectedRuns();
    const layers = [...new Set(runs.flatMap(layersOf))].sort(naturalCompare);
    if (!layers.length) {
      controls.hidden = true;
      strip.parentElement.hidden = true;
      panels = runPanels.reset();
      setChildren(
        panelRow,
        message(
          "empty",
          `No activation maps logged in ${runNames(runs)}`,
          h("p", {
            text: "Pass probe=(images, labels) to CNNVizCallback: it then logs the activation maps of 3 evenly spaced conv layers every 200 steps (activation_layers=[...] to choose).",
          }),
        ),
      );
      return;
    }
    controls.hidden = false;
    strip.parentElement.hidden = false;
    if (!layers.includes(st.layer)) st.layer = layers[0];
    fillSelect(layerSelect, layers, st.layer);
    const layer = st.layer;
    panels = runPanels.sync(runs, layer);
    await loadPanelSteps(panels, "activations", layer, () => my === token);
    if (my !== token) return;
    st.step = slider.setSteps(unionSteps(...panels.map((p) => p.steps)), st.step);
    drawAll();
  }

  function drawAll() {
    panels.forEach((p, i) => drawPanel(p, i === 0));
  }

  async function drawPanel(p, first) {
    if (!p.steps.length) {
      p.note.textContent = "No activation maps logged for this layer in this run.";
      return;
    }
    const i = atOrBefore(p.steps, st.step);
    const step = p.steps[i];
    p.wanted = step;
    p.note.textContent =
      step === st.step ? `step ${step}` : `step ${step} (last logged at or before ${st.step})`;
    const my = token;
    let data;
    try {
      const pending = stepData(p.run.name, p.layer, step);
      if (!stable.has(`act:${p.run.name}\u0000${p.layer}\u0000${step}`)) setLoading(p.figure, true);
      data = await pending;
      if (p.wanted !== step || my !== token) return;
      if (first) drawStrip(data);
      const index = Math.min(st.image, data.images.length - 1);
      const url = data.images[index];
      const probeUrl = data.probe && data.probe.images[Math.min(index, data.probe.images.length - 1)];
      const ready = peekBitmap(url) && (!probeUrl || peekBitmap(probeUrl));
      if (!ready) setLoading(p.figure, true);
      const [grid, probe] = await Promise.all([bitmap(url), probeUrl ? bitmap(probeUrl) : null]);
      if (p.wanted !== step || my !== token) return;
      setLoading(p.figure, false);
      paint(p, data, index, grid, probe);
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
        .then(
          (d) =>
            d.images[Math.min(st.image, d.images.length - 1)] &&
            bitmap(d.images[Math.min(st.image, d.images.length - 1)]),
        )
        .catch(() => {});
    }
  }

  function paint(p, data, index, grid, probe) {
    const scale = Math.max(1, Math.min(8, Math.floor((panels.length > 1 ? 340 : 460) / grid.width)));
    p.grid.width = grid.width * scale;
    p.grid.height = grid.height * scale;
    const ctx = p.grid.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(grid, 0, 0, p.grid.width, p.grid.height);
    p.layout = {
      scale,
      nrow: data.nrow || 8,
      padding: data.padding ?? 1,
      tile: data.tile || null,
      channels: data.channels || 0,
    };
    p.grid.dataset.step = String(data.step);
    p.grid.dataset.image = String(index);
    if (probe) {
      const ps = Math.max(1, Math.floor(128 / Math.max(probe.width, probe.height)));
      p.probe.width = probe.width * ps;
      p.probe.height = probe.height * ps;
      const pctx = p.probe.getContext("2d");
      pctx.imageSmoothingEnabled = false;
      pctx.drawImage(probe, 0, 0, p.probe.width, p.probe.height);
      p.probeLabel.textContent = `probe #${index}${labelText(data.probe, index) ? ` · ${labelText(data.probe, index)}` : ""}`;
    } else {
      p.probe.width = p.probe.height = 0;
      p.probeLabel.textContent = "probe image not logged";
    }
  }

  function hover(p, event) {
    const L = p.layout;
    if (!L || !L.tile) return;
    const rect = p.grid.getBoundingClientRect();
    const x = ((event.clientX - rect.left) * p.grid.width) / rect.width / L.scale;
    const y = ((event.clientY - rect.top) * p.grid.height) / rect.height / L.scale;
    const [th, tw] = L.tile;
    const col = Math.floor((x - L.padding) / (tw + L.padding));
    const row = Math.floor((y - L.padding) / (th + L.padding));
    const channel = row * L.nrow + col;
    p.hover.textContent =
      col >= 0 && col < L.nrow && row >= 0 && channel < L.channels
        ? `channel ${channel} of ${L.channels} (tile ${th}×${tw})`
        : "Hover over a tile to see its channel.";
  }

  let stripKey = "";
  function drawStrip(data) {
    const probe = data.probe;
    const count = data.images.length;
    const key = `${probe ? probe.images.join("|") : ""}#${count}`;
    if (key === stripKey) return updateStripSelection();
    stripKey = key;
    const items = [];
    for (let i = 0; i < count; i++) {
      const thumb = h("canvas", { class: "thumb", width: "40", height: "40" });
      const item = h(
        "button",
        {
          type: "button",
          class: "strip-item",
          role: "option",
          dataset: { index: String(i) },
          title: labelText(probe, i) || `probe #${i}`,
          on: { click: () => choose(i) },
        },
        thumb,
        h("span", { text: labelText(probe, i).split(" (")[0] || `#${i}` }),
      );
      items.push(item);
      if (probe && probe.images[i]) {
        bitmap(probe.images[i])
          .then((b) => {
            const ctx = thumb.getContext("2d");
            ctx.imageSmoothingEnabled = false;
            ctx.drawImage(b, 0, 0, 40, 40);
          })
          .catch(() => {});
      } else {
        const ctx = thumb.getContext("2d");
        ctx.fillStyle = colors().grid;
        ctx.fillRect(0, 0, 40, 40);
      }
    }
    setChildren(strip, items);
    updateStripSelection();
  }

  function updateStripSelection() {
    for (const item of strip.children) {
      const on = Number(item.dataset.index) === st.image;
      item.classList.toggle("on", on);
      item.setAttribute("aria-selected", String(on));
    }
  }

  function choose(i) {
    st.image = i;
    updateStripSelection();
    drawAll();
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
