// Top images: for a layer's filter, the probe images that activate it most (thumbnails cut from
// the embedding's sprites, with the receptive field of the maximum). Shown in the Embedding view
// (a panel with a layer select, a filter picker and every filter's best image), beside a
// pattern in the Patterns view, and reached from Filters and Patterns through `topLink`.
import { eventPoint, field, fillSelect, h, select, setChildren } from "../../dom.js";
import { colors, sizeCanvas } from "../../draw.js";
import { className, formatNumber } from "../../format.js";
import { cell, drawThumb } from "../../sprites.js";
import { atOrBefore, hasKind, layerUnion, layersWith } from "../../steps.js";
import { topData, topSteps } from "./data.js";

/** A button that opens filter `filter` of `layer` in the Top images of the Embedding view. */
export function topLink(
  shell,
  { run, layer, filter },
  title = "The probe images that activate this filter most (Embedding view)",
) {
  return h("button", {
    type: "button",
    class: "link-button open-top",
    text: "Top images ▸",
    title,
    on: { click: () => shell.open("embedding", { layer, filter, run }) },
  });
}

/** The thumbnails of a filter's top examples ({id, activation, box}), `size` px each. */
export function exampleFigures(sheet, examples, imageSize, size) {
  return examples.map((ex) => {
    const canvas = h("canvas", { class: "thumb top-thumb" });
    if (sheet) drawThumb(canvas, sheet, ex.id, { size, box: ex.box, imageSize });
    return h(
      "figure",
      { class: "top-example", title: `image ${ex.id}: activation ${formatNumber(ex.activation, 3)}` },
      canvas,
      h("figcaption", { text: formatNumber(ex.activation, 2) }),
    );
  });
}

/** A pattern's top images (Patterns view): `top` = {step, examples, image_size} from api/patterns/filter; `sheetPromise` the run's sprites. */
export async function drawPatternTop(box, shell, run, layer, channel, top, sheetPromise) {
  if (!top) {
    setChildren(
      box,
      h("p", {
        class: "hint",
        text: "Top images are logged for the layers in top_example_layers when CNNVizCallback has an embedding_probe.",
      }),
    );
    return;
  }
  const link = topLink(
    shell,
    { run: run.name, layer, filter: channel },
    "Open this filter in the Top images panel of the Embedding view",
  );
  const head = h(
    "div",
    { class: "top-head" },
    h("span", { class: "chart-title", text: `Most activating probe images (step ${top.step})` }),
    link,
  );
  if (!top.examples.length) {
    setChildren(box, head, h("p", { class: "hint", text: "No examples recorded for this filter." }));
    return;
  }
  const sheet = await sheetPromise;
  setChildren(
    box,
    head,
    h("div", { class: "top-strip" }, exampleFigures(sheet, top.examples, top.image_size, 56)),
    sheet
      ? null
      : h("p", { class: "hint", text: "Thumbnails need the sprites (logged with the embedding)." }),
  );
}

/**
 * The Top images panel of the Embedding view. `hooks.highlight(id)` marks an image in the map
 * while hovered, `hooks.pin(id)` pins it on click. Returns {fields, section(panel), update(runs,
 * intent), draw(panels, step, live, wide)}; `section` adds panel.top and what it draws into.
 */
export function topImages(hooks) {
  const st = { layer: null, filter: 0, focusRun: null, panels: [], step: null, live: () => true };
  const layerSelect = select(
    [],
    null,
    (v) => {
      st.layer = v;
      st.filter = 0;
      drawAll();
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
  const stepButton = (text, title, delta) =>
    h("button", {
      type: "button",
      class: "step-button",
      text,
      title,
      on: { click: () => chooseFilter(st.filter + delta) },
    });
  const fields = h(
    "span",
    { class: "top-fields" },
    field("Top images of", layerSelect),
    field(
      "filter",
      h(
        "span",
        { class: "filter-picker" },
        stepButton("◀", "previous filter", -1),
        filterInput,
        stepButton("▶", "next filter", 1),
      ),
    ),
  );

  function chooseFilter(f) {
    if (!Number.isFinite(f)) return;
    st.filter = Math.max(0, Math.floor(f));
    filterInput.value = String(st.filter);
    drawAll();
  }

  /** The runs changed (or a reload): the layers with top images; an intent from another view picks layer and filter. */
  function update(runs, intent) {
    const layers = layerUnion(runs, (run) => layersWith(run, "top_examples"));
    if (intent && layers.includes(intent.layer)) {
      st.layer = intent.layer;
      st.filter = Math.max(0, Number(intent.filter) || 0);
      st.focusRun = intent.run || null;
    }
    if (!layers.includes(st.layer)) st.layer = layers[0] || null;
    fillSelect(layerSelect, layers, st.layer);
    fields.hidden = !layers.length;
    filterInput.value = String(st.filter);
  }

  function draw(panels, step, live, wide) {
    Object.assign(st, { panels, step, live, wide });
    drawAll();
  }

  function drawAll() {
    for (const p of st.panels) drawPanel(p);
  }

  async function drawPanel(p) {
    const layer = st.layer;
    p.top.hidden = !layer;
    if (!layer) return;
    if (!hasKind(p.run, layer, "top_examples")) {
      p.topNote.textContent = `No top images logged for ${layer} in this run.`;
      setChildren(p.topStrip);
      p.mosaic.hidden = true;
      return;
    }
    const live = st.live;
    try {
      if (!p.topSteps.length || p.topLayer !== layer) {
        p.topSteps = await topSteps(p.run, layer);
        p.topLayer = layer;
      }
      if (!live() || !p.topSteps.length) return;
      const step = p.topSteps[atOrBefore(p.topSteps, st.step)];
      const wanted = (p.topWanted = `${layer}|${step}|${st.filter}`);
      const overview = await topData(p.run.name, layer, step, null);
      if (wanted !== p.topWanted || !live()) return;
      if (st.filter >= overview.filters) {
        st.filter = Math.max(0, overview.filters - 1);
        filterInput.value = String(st.filter);
      }
      filterInput.max = String(Math.max(0, overview.filters - 1));
      const detail = await topData(p.run.name, layer, step, st.filter);
      if (wanted !== p.topWanted || !live()) return;
      paintExamples(p, detail, st.step, hooks);
      paintMosaic(p, overview, st.filter, st.wide);
      focus(p);
    } catch (error) {
      if (live()) p.topNote.textContent = `Could not load top images: ${error.message}`;
    }
  }

  /** After a link from another view: scroll to the panel of the run it came from. */
  function focus(p) {
    const run = st.focusRun;
    if (run === null || (run !== p.run.name && st.panels.some((q) => q.run.name === run))) return;
    st.focusRun = null;
    p.top.scrollIntoView({ block: "start", behavior: "instant" });
    p.top.classList.add("flash");
    setTimeout(() => p.top.classList.remove("flash"), 1200);
  }

  return { fields, section: (p) => section(p, chooseFilter), update, draw };
}

/** The Top images section of an Embedding panel: adds panel.top and what it draws into. */
function section(p, chooseFilter) {
  p.topSteps = [];
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
  p.mosaic.addEventListener("click", (event) => {
    if (!p.mosaicLayout) return;
    const f = mosaicHit(p.mosaicLayout, ...eventPoint(event, p.mosaic));
    if (f >= 0) chooseFilter(f);
  });
  return p.top;
}

/** A filter's top examples (hover rings the image in the map, a click pins it). */
function paintExamples(p, detail, step, hooks) {
  const names = detail.class_names;
  p.topNote.textContent = `${detail.layer}, filter #${detail.channel} of ${detail.filters} · step ${detail.step}${detail.step > step ? " (first logged)" : ""} · the ${detail.examples.length} probe images that activate it most; the box is the receptive field of its maximum`;
  p.top.dataset.filter = String(detail.channel);
  p.top.dataset.layer = detail.layer;
  const items = detail.examples.map((ex) => {
    const canvas = h("canvas", { class: "thumb top-thumb" });
    if (p.sheet) drawThumb(canvas, p.sheet, ex.id, { size: 84, box: ex.box, imageSize: detail.image_size });
    const wrong = ex.label !== null && ex.predicted !== null && ex.label !== ex.predicted;
    const label =
      ex.label !== null
        ? h("span", {
            class: wrong ? "wrong" : "",
            text: ` · ${className(names, ex.label)}${wrong ? " ✗" : ""}`,
          })
        : null;
    const fig = h(
      "figure",
      {
        class: "top-example",
        dataset: { id: String(ex.id) },
        title: `image #${ex.id}: activation ${formatNumber(ex.activation, 3)} — hover to find it in the map, click to pin it`,
      },
      canvas,
      h("figcaption", {}, h("span", { text: formatNumber(ex.activation, 2) }), label),
    );
    fig.addEventListener("mouseenter", () => hooks.highlight(ex.id));
    fig.addEventListener("mouseleave", () => hooks.highlight(null));
    fig.addEventListener("click", () => hooks.pin(ex.id));
    return fig;
  });
  if (!items.length) items.push(h("p", { class: "hint", text: "No examples recorded for this filter yet." }));
  if (!p.sheet)
    items.push(
      h("p", { class: "hint", text: "Thumbnails need the sprites (logged with the first embedding)." }),
    );
  setChildren(p.topStrip, items);
}

/** Every filter's best image, the chosen `filter` framed. */
function paintMosaic(p, overview, filter, wide) {
  const count = overview.best.length;
  p.mosaic.hidden = !count || !p.sheet;
  if (p.mosaic.hidden) return;
  const L = mosaicLayout(count, wide ? 440 : 680);
  const ctx = sizeCanvas(p.mosaic, L.width, L.height);
  const c = colors();
  ctx.imageSmoothingEnabled = false;
  overview.best.forEach((ex, f) => {
    const x = (f % L.cols) * L.cell;
    const y = Math.floor(f / L.cols) * L.cell;
    const at = ex && cell(p.sheet, ex.id);
    if (at) ctx.drawImage(at.atlas, at.sx, at.sy, at.w, at.h, x + 1, y + 1, L.cell - 2, L.cell - 2);
    else {
      ctx.fillStyle = c.grid;
      ctx.fillRect(x + 1, y + 1, L.cell - 2, L.cell - 2);
    }
    if (f === filter) {
      ctx.strokeStyle = c.select;
      ctx.lineWidth = 3;
      ctx.strokeRect(x + 1.5, y + 1.5, L.cell - 3, L.cell - 3);
    }
  });
  p.mosaicLayout = L;
}

/** Layout of the best-image mosaic: `count` cells (28 px past 128 filters, else 40) in `width` px. */
export function mosaicLayout(count, width) {
  const size = count > 128 ? 28 : 40;
  const cols = Math.max(1, Math.floor(width / size));
  const rows = Math.ceil(count / cols);
  return { cols, rows, cell: size, count, width: Math.min(count, cols) * size, height: rows * size };
}

/** Filter index under (x, y) CSS px of the mosaic, or -1. */
export function mosaicHit(layout, x, y) {
  const col = Math.floor(x / layout.cell);
  const row = Math.floor(y / layout.cell);
  const f = row * layout.cols + col;
  return col >= 0 && col < layout.cols && row >= 0 && f < layout.count ? f : -1;
}
