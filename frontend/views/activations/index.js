// Activations view: for one probe image and a layer, the per-channel activation tiles at a
// chosen step, with the probe image beside them. The grid is scaled to the panel's width
// (pixelated), tiles sort by channel, mean or max, a click enlarges one, and maps of 4×4 or
// smaller are a bar chart of per-channel means instead of tiles (see tiles.js). Routes: api/activations/step (+ PNGs from
// api/runs/image).
import { eventPoint, field, h, setChildren, stateToggle } from "../../dom.js";
import { colors } from "../../draw.js";
import { formatNumber, labelText, stepNote } from "../../format.js";
import { basePanel, layerView } from "../../layer_view.js";
import { activationStep, activationSteps, stepReady } from "./data.js";
import {
  MAX_UPSCALE,
  barMode,
  channelOf,
  drawBars,
  drawTiles,
  tileIndexAt,
  tileOrder,
  tileOrigin,
  tileStats,
} from "./tiles.js";
import { probeStrip } from "./strip.js";

const HINT = "Hover over a tile for its channel and values; click to enlarge it.";
const TILE_SORTS = { channel: "channel", mean: "mean", max: "max" }; // tile orders (see tileOrder)
const pixelCache = new WeakMap();

/** RGBA pixels of a decoded grid (read once per bitmap). */
function pixelsOf(bitmap) {
  let pixels = pixelCache.get(bitmap);
  if (!pixels) {
    const canvas = document.createElement("canvas");
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(bitmap, 0, 0);
    pixels = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
    pixelCache.set(bitmap, pixels);
  }
  return pixels;
}

/** The probe image scaled up to about 128 px (pixelated) and its label; "probe image not logged" without one. */
function drawProbe(p, probe, probeInfo, index) {
  if (!probe) {
    p.probe.width = p.probe.height = 0;
    p.probeLabel.textContent = "probe image not logged";
    return;
  }
  const ps = Math.max(1, Math.floor(128 / Math.max(probe.width, probe.height)));
  p.probe.width = probe.width * ps;
  p.probe.height = probe.height * ps;
  const pctx = p.probe.getContext("2d");
  pctx.imageSmoothingEnabled = false;
  pctx.drawImage(probe, 0, 0, p.probe.width, p.probe.height);
  const label = labelText(probeInfo, index);
  p.probeLabel.textContent = `probe #${index}${label ? ` · ${label}` : ""}`;
}

/** CSS px the grid may take: the panel row's width shared by `count` panels, less the probe image. */
function available(p, count) {
  const row = p.el.parentElement ? p.el.parentElement.clientWidth : 640;
  const per = Math.floor(row / Math.max(1, count)) - 190;
  return Math.max(200, Math.min(per, 900));
}

/** Outline the k-th tile shown. */
function outline(p, k) {
  if (k < 0) return;
  const [x, y] = tileOrigin(p.layout, k);
  const [th, tw] = p.layout.tile;
  const ctx = p.grid.getContext("2d");
  ctx.strokeStyle = colors().select;
  ctx.lineWidth = 1;
  ctx.strokeRect(x - 0.5, y - 0.5, tw + 1, th + 1);
}

/** Tile (index into the logged grid) under a pointer event, or -1. */
function tileUnder(p, event) {
  const L = p.layout;
  if (!L || !L.tile || !p.order) return -1;
  const [x, y] = eventPoint(event, p.grid, true);
  const k = p.bars ? Math.floor(x / p.barLayout.bar) : tileIndexAt(L, x, y);
  return k >= 0 && k < p.order.length ? p.order[k] : -1;
}

/** "channel 17 of 2048 · map 2×2 · mean 0.31, max 0.92 of its peak" for tile `t`. */
function tileText(p, t) {
  const L = p.layout;
  const size = L.mapSize || L.tile;
  const shown = L.shown && L.shown.length < L.channels ? ` (${L.shown.length} most active shown)` : "";
  return `channel ${channelOf(L, t)} of ${L.channels}${shown} · map ${size[0]}×${size[1]} · mean ${formatNumber(p.stats.mean[t], 3)}, max ${formatNumber(p.stats.max[t], 3)} of the channel's peak over the probe images`;
}

/** Tile `t` (the selected one; -1: none) enlarged, with its channel and values; `close()` on its close button. */
function drawDetail(p, t, close) {
  if (t < 0 || !p.stats || t >= p.order.length) return setChildren(p.detail);
  const [th, tw] = p.layout.tile;
  const [sx, sy] = tileOrigin(p.layout, t);
  const big = h("canvas", { class: "tile-big", width: String(tw), height: String(th) });
  big.getContext("2d").drawImage(p.bitmap, sx, sy, tw, th, 0, 0, tw, th);
  const side = 160;
  big.style.width = `${tw >= th ? side : Math.round((side * tw) / th)}px`;
  const channel = String(channelOf(p.layout, t));
  setChildren(
    p.detail,
    big,
    h("p", { class: "tile-text", dataset: { channel }, text: tileText(p, t) }),
    h("button", { type: "button", class: "link-button tile-close", text: "close", on: { click: close } }),
  );
}

export function create(root, shell) {
  const st = { image: 0, sort: "channel", selected: -1 };
  let view;
  const unselect = () => {
    st.selected = -1;
    view.redraw();
  };
  const strip = probeStrip((i) => {
    st.image = i;
    view.redraw();
  });

  function makePanel(run, layer) {
    const p = basePanel(run, layer);
    p.probe = h("canvas", { class: "probe-image" });
    p.probeLabel = h("div", { class: "probe-label" });
    p.grid = h("canvas", { class: "activation-grid" });
    p.hover = h("div", { class: "hover-readout", text: HINT });
    p.grid.addEventListener("mousemove", (event) => {
      const t = tileUnder(p, event);
      p.hover.textContent = t >= 0 ? tileText(p, t) : HINT;
    });
    p.grid.addEventListener("click", (event) => {
      const t = tileUnder(p, event);
      st.selected = t < 0 || t === st.selected ? -1 : t;
      view.redraw();
    });
    p.detail = h("div", { class: "tile-detail" });
    p.barNote = h("div", { class: "bar-note", hidden: true });
    p.figure = h(
      "div",
      { class: "figure activation-figure" },
      h("figure", { class: "probe-figure" }, p.probe, p.probeLabel),
      h("figure", { class: "grid-figure" }, p.barNote, p.grid, p.hover, p.detail),
    );
    p.el.append(p.figure);
    return p;
  }

  function paint(p, { data, index, grid, probe }, step) {
    p.note.textContent = stepNote(step, view.state.step);
    if (p === view.panels[0]) strip.draw(data, st.image);
    p.layout = {
      nrow: data.nrow || 8,
      padding: data.padding ?? 1,
      tile: data.tile || null,
      channels: data.channels || 0,
      // tile i is channel shown[i] (older runs: every channel, in order); mapSize: before downsampling
      shown: data.channels_shown || null,
      mapSize: data.map_size || data.tile || null,
    };
    drawGrid(p, grid);
    p.grid.dataset.step = String(data.step);
    p.grid.dataset.image = String(index);
    drawProbe(p, probe, data.probe, index);
  }

  /** The grid (or the bar chart), sorted as chosen, scaled to the width available; the selected tile enlarged. */
  function drawGrid(p, grid) {
    const L = p.layout;
    p.bitmap = grid;
    if (!L.tile) {
      p.bars = false;
      p.barNote.hidden = true;
      drawTiles(p.grid, grid, L, [0]);
      p.grid.style.width = `${grid.width}px`;
      return setChildren(p.detail);
    }
    p.stats = tileStats(pixelsOf(grid), grid.width, L);
    p.order = tileOrder(p.stats, st.sort);
    if (st.selected >= p.order.length) st.selected = -1;
    const room = available(p, view.panels.length);
    p.bars = barMode({ tile: L.mapSize || L.tile });
    if (p.bars) {
      const by = st.sort === "max" ? "max" : "mean";
      p.barLayout = drawBars(p.grid, p.stats[by], p.order, { width: room, selected: st.selected });
      p.barNote.textContent = `Maps of ${(L.mapSize || L.tile).join("×")} px: one bar per channel, its ${by} over the map as a fraction of the channel's peak over the probe images (${st.sort === "channel" ? "in channel order" : `highest ${by} first`}).`;
      p.grid.style.width = `${Math.min(room, p.barLayout.width * MAX_UPSCALE)}px`;
    } else {
      drawTiles(p.grid, grid, L, p.order);
      if (st.selected >= 0) outline(p, p.order.indexOf(st.selected));
      p.grid.style.width = `${Math.min(room, grid.width * MAX_UPSCALE)}px`;
    }
    p.grid.style.height = p.bars ? "140px" : "auto";
    p.grid.classList.toggle("bars", p.bars);
    p.barNote.hidden = !p.bars;
    p.grid.dataset.sort = st.sort;
    p.grid.dataset.mode = p.bars ? "bars" : "tiles";
    drawDetail(p, st.selected, unselect);
  }

  return layerView(root, shell, {
    name: "activations",
    nothing: "activation maps",
    onLayer: () => (st.selected = -1),
    setup(v) {
      view = v;
      const sort = stateToggle(st, "sort", TILE_SORTS, () => view.redraw(), {
        class: "tile-sort",
        "aria-label": "sort tiles by",
      });
      return {
        controls: [view.layerField, view.slider.el, field("Sort tiles by", sort)],
        before: [strip.el],
      };
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
  const i = tileIndexAt(layout, x, y);
  return i < 0 ? -1 : channelOf(layout, i);
}
