// Activations view: for one probe image and a layer, the per-channel activation tiles at a
// chosen step, with the probe image beside them. Routes: api/activations/step (+ PNGs from
// api/runs/image).
import { eventPoint, h, setChildren } from "../../dom.js";
import { colors } from "../../draw.js";
import { labelText, stepNote } from "../../format.js";
import { basePanel, layerView } from "../../layer_view.js";
import { layersWith } from "../../steps.js";
import { activationStep, activationSteps, stepReady } from "./data.js";
import { picture } from "../top_images/data.js";

export function create(root, shell) {
  const st = { image: 0 };
  let view;
  const strip = h("div", { class: "probe-strip", role: "listbox", "aria-label": "probe image" });
  const stripBox = h(
    "div",
    { class: "strip-box" },
    h("div", { class: "field-label", text: "Probe image" }),
    strip,
  );
  let stripKey = "";

  function makePanel(run, layer) {
    const p = basePanel(run, layer);
    p.probe = h("canvas", { class: "probe-image" });
    p.probeLabel = h("div", { class: "probe-label" });
    p.grid = h("canvas", { class: "activation-grid" });
    p.hover = h("div", { class: "hover-readout", text: "Hover over a tile to see its channel." });
    p.grid.addEventListener("mousemove", (event) => hover(p, event));
    p.figure = h(
      "div",
      { class: "figure activation-figure" },
      h("figure", { class: "probe-figure" }, p.probe, p.probeLabel),
      h("figure", { class: "grid-figure" }, p.grid, p.hover),
    );
    p.el.append(p.figure);
    return p;
  }

  function paint(p, { data, index, grid, probe }, step) {
    p.note.textContent = stepNote(step, view.state.step);
    if (p === view.panels[0]) drawStrip(data);
    const scale = Math.max(1, Math.min(8, Math.floor((view.compared ? 340 : 460) / grid.width)));
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
      // tile i is channel shown[i] (older runs: every channel, in order); mapSize: before downsampling
      shown: data.channels_shown || null,
      mapSize: data.map_size || data.tile || null,
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
      const label = labelText(data.probe, index);
      p.probeLabel.textContent = `probe #${index}${label ? ` · ${label}` : ""}`;
    } else {
      p.probe.width = p.probe.height = 0;
      p.probeLabel.textContent = "probe image not logged";
    }
  }

  function hover(p, event) {
    const L = p.layout;
    if (!L || !L.tile) return;
    const [x, y] = eventPoint(event, p.grid, true);
    const channel = tileAt(L, x / L.scale, y / L.scale);
    const size = L.mapSize || L.tile;
    const shown = L.shown && L.shown.length < L.channels ? `; ${L.shown.length} most active shown` : "";
    p.hover.textContent =
      channel >= 0
        ? `channel ${channel} of ${L.channels} (map ${size[0]}×${size[1]}${shown})`
        : "Hover over a tile to see its channel.";
  }

  function drawStrip(data) {
    const probe = data.probe;
    const count = data.images.length;
    const key = `${probe ? probe.images.join("|") : ""}#${count}`;
    if (key === stripKey) return markStrip();
    stripKey = key;
    const items = [];
    for (let i = 0; i < count; i++) {
      const thumb = h("canvas", { class: "thumb", width: "40", height: "40" });
      items.push(
        h(
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
        ),
      );
      const ctx = thumb.getContext("2d");
      if (probe && probe.images[i]) {
        picture(probe.images[i])
          .then((b) => {
            ctx.imageSmoothingEnabled = false;
            ctx.drawImage(b, 0, 0, 40, 40);
          })
          .catch(() => {});
      } else {
        ctx.fillStyle = colors().grid;
        ctx.fillRect(0, 0, 40, 40);
      }
    }
    setChildren(strip, items);
    markStrip();
  }

  function markStrip() {
    for (const item of strip.children) {
      const on = Number(item.dataset.index) === st.image;
      item.classList.toggle("on", on);
      item.setAttribute("aria-selected", String(on));
    }
  }

  function choose(i) {
    st.image = i;
    markStrip();
    view.redraw();
  }

  return layerView(root, shell, {
    name: "activations",
    nothing: "activation maps",
    layersOf: (run) => layersWith(run, "activations"),
    setup(v) {
      view = v;
      return { controls: [view.layerField, view.slider.el], before: [stripBox] };
    },
    makePanel,
    load: async (p, layer) => ({ steps: await activationSteps(p.run, layer) }),
    none: (p) => (p.note.textContent = "No activation maps logged for this layer in this run."),
    ready: (p, step) => stepReady(p.run.name, p.layer, step, st.image),
    fetch: (p, step) => activationStep(p.run.name, p.layer, step, st.image),
    paint,
  });
}

/** Channel of the tile under (x, y) px of an activation grid {nrow, padding, tile: [h, w], channels,
 * shown: the channel of each tile (null: every channel)}, or -1. */
export function tileAt(layout, x, y) {
  const [th, tw] = layout.tile;
  const col = Math.floor((x - layout.padding) / (tw + layout.padding));
  const row = Math.floor((y - layout.padding) / (th + layout.padding));
  const index = row * layout.nrow + col;
  const tiles = layout.shown ? layout.shown.length : layout.channels;
  if (!(col >= 0 && col < layout.nrow && row >= 0 && index < tiles)) return -1;
  return layout.shown ? layout.shown[index] : index;
}
