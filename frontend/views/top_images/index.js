// Top images view: for a layer's filter, the probe images of the embedding probe set that
// activate it most (thumbnails cut from the embedding's sprites, each with the receptive field of
// its maximum), beside every filter's best image (a mosaic: click one to choose its filter). A tab
// of its own (`top_examples` is written by the embedding snapshot, shown here: kinds.py
// View.shows_kinds); also the strip beside a pattern in the Patterns view, and the target of the
// `topLink` buttons of Filters and Patterns. A click on an image opens it pinned in the Embedding map.
// Routes: api/top_images/examples (+ api/embedding/sprites for the thumbnails).
import { eventPoint, field, h, setChildren } from "../../dom.js";
import { colors, sizeCanvas } from "../../draw.js";
import { className, formatNumber, stepNote } from "../../format.js";
import { basePanel, droppedNotice, emptyPanel, layerView } from "../../layer_view.js";
import { cell, drawThumb, loadCells } from "../../sprites.js";
import { spriteSheet, topData, topReady, topSteps } from "./data.js";

/** A button that opens filter `filter` of `layer` in the Top images tab. */
export function topLink(
  shell,
  { run, layer, filter },
  title = "The probe images that activate this filter most (Top images tab)",
) {
  return h("button", {
    type: "button",
    class: "link-button open-top",
    text: "Top images ▸",
    title,
    on: { click: () => shell.open("top_images", { layer, filter, run }) },
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
    "Open this filter in the Top images tab",
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
  const ids = top.examples.map((ex) => ex.id);
  if (sheet) await loadCells(sheet, ids); // only the atlases of the images shown (sprites.js)
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
 * The Top images tab on the layer-view skeleton: the layers with top examples, the step slider over
 * the embedding snapshots that recorded them, one panel per selected run with the chosen filter's top
 * images beside every filter's best image.
 */
export function create(root, shell) {
  // filter: the chosen filter (one for every panel); focus: a link from another view just opened it.
  const st = { filter: 0, focus: false };
  let view;
  const picker = filterPicker(chooseFilter, (delta) => chooseFilter(st.filter + delta));
  const filterInput = picker.input;

  function chooseFilter(f) {
    if (!Number.isFinite(f)) return;
    st.filter = Math.max(0, Math.floor(f));
    filterInput.value = String(st.filter);
    view.redraw();
  }

  function setup(v) {
    view = v;
    return { controls: [view.layerField, view.slider.el, field("Filter", picker.el)] };
  }

  /** The filter panel `p` shows: the chosen one, within its layer's `filters`. */
  const shownFilter = (filters) => Math.max(0, Math.min(st.filter, filters - 1));

  async function fetch(p, step) {
    const overview = await topData(p.run.name, p.layer, step, null);
    const detail = overview.filters
      ? await topData(p.run.name, p.layer, step, shownFilter(overview.filters))
      : null;
    // the thumbnails' atlases of the images shown, loaded before painting (sprites.js)
    const ids = detail ? [...overview.best, ...detail.examples].filter(Boolean).map((ex) => ex.id) : [];
    if (p.sheet) await loadCells(p.sheet, ids);
    return { overview, detail };
  }

  function paint(p, { overview, detail }, step) {
    // An answer for a filter chosen before the last click: the draw for the new one follows.
    if (detail && detail.channel !== shownFilter(overview.filters)) return;
    if (st.filter >= overview.filters && p === view.panels[0] && overview.filters > 0) {
      st.filter = overview.filters - 1;
      filterInput.value = String(st.filter);
    }
    filterInput.max = String(
      Math.max(0, ...view.panels.map((q) => (q.filters || 1) - 1), overview.filters - 1),
    );
    p.filters = overview.filters;
    p.figure.dataset.layer = overview.layer;
    p.figure.dataset.step = String(overview.step);
    if (!detail) {
      p.note.textContent = `${stepNote(overview.step, view.state.step)} · no filters recorded for ${overview.layer}`;
      setChildren(p.strip);
      p.mosaic.hidden = true;
      return;
    }
    p.note.textContent = [
      stepNote(detail.step, view.state.step),
      `${detail.layer}, filter #${detail.channel} of ${detail.filters}`,
      `the ${detail.examples.length} probe images that activate it most; the box is the receptive field of its maximum`,
    ].join(" · ");
    p.figure.dataset.filter = String(detail.channel);
    paintExamples(p, detail, shell);
    paintMosaic(p, overview, detail.channel);
    if (st.focus && p === view.panels[0]) {
      // Opened from a link: the tab's top (controls and the filter's images) in view, flashed once.
      st.focus = false;
      flash(root, p.figure);
    }
  }

  return layerView(root, shell, {
    name: "top_images",
    nothing: "top images",
    layerAria: "top images layer",
    kind: "top_examples",
    setup,
    makePanel: (run, layer) => makePanel(run, layer, chooseFilter),
    load: async (p, layer) => {
      const [steps, sheet] = await Promise.all([topSteps(p.run, layer), spriteSheet(p.run)]);
      // The embedding snapshot writes them: its skipped snapshots are this tab's too.
      p.dropped.textContent = droppedNotice(p.run, "embedding");
      p.dropped.hidden = !p.dropped.textContent;
      return { steps, sheet };
    },
    none: (p) => emptyPanel(p, `No top images logged for ${p.layer} in this run.`),
    ready: (p, step) => topReady(p.run.name, p.layer, step, shownFilter(p.filters || 1)),
    fetch,
    paint,
    take(intent, layers) {
      if (Number.isInteger(intent.filter) && intent.filter >= 0) {
        st.filter = intent.filter;
        filterInput.value = String(st.filter);
      }
      st.focus = intent.filter !== undefined;
      return layers.includes(intent.layer) ? intent.layer : null;
    },
    urlState: () => ({ filter: st.filter }),
  });
}

/** The filter number input between ◀ and ▶ buttons: `choose(f)` on a typed number, `step(±1)` on a button.
 * Returns {el, input}. */
function filterPicker(choose, step) {
  const input = h("input", {
    type: "number",
    min: "0",
    step: "1",
    value: "0",
    class: "top-filter",
    "aria-label": "filter",
  });
  input.addEventListener("change", () => choose(Number(input.value)));
  const stepButton = (text, title, delta) =>
    h("button", { type: "button", class: "step-button", text, title, on: { click: () => step(delta) } });
  const el = h(
    "span",
    { class: "filter-picker" },
    stepButton("◀", "previous filter", -1),
    input,
    stepButton("▶", "next filter", 1),
  );
  return { el, input };
}

/** A panel: the chosen filter's top images beside the mosaic of every filter's best image (a click chooses
 * that filter: `chooseFilter(f)`). */
function makePanel(run, layer, chooseFilter) {
  const p = basePanel(run, layer);
  p.sheet = null;
  p.strip = h("div", { class: "top-strip top-examples" });
  p.detail = h(
    "section",
    { class: "top-detail", style: { flex: "1 1 300px", minWidth: "0", maxWidth: "620px" } },
    h("div", { class: "chart-title", text: "The filter's most activating probe images" }),
    p.strip,
  );
  p.mosaic = h("canvas", {
    class: "top-mosaic",
    title: "Each filter's most activating image: click to choose the filter",
  });
  p.best = h(
    "section",
    { class: "top-best", style: { flex: "1 1 280px", minWidth: "0" } },
    h("div", { class: "chart-title", text: "Best image of every filter (click one)" }),
    p.mosaic,
  );
  // The details first: beside the mosaic on a wide screen, above it on a narrow one (no scrolling
  // past a 2048-filter mosaic to see the chosen filter).
  p.figure = h(
    "div",
    {
      class: "figure top-panel",
      style: {
        display: "flex",
        flexWrap: "wrap",
        gap: "16px",
        alignItems: "flex-start",
        borderTop: "none",
        marginTop: "4px",
      },
    },
    p.detail,
    p.best,
  );
  p.el.append(p.figure);
  Object.assign(p.el.style, { flex: "1 1 0" }); // the panels share the row (the mosaic takes what is left)
  p.mosaic.addEventListener("click", (event) => {
    if (!p.mosaicLayout) return;
    const f = mosaicHit(p.mosaicLayout, ...eventPoint(event, p.mosaic));
    if (f >= 0) chooseFilter(f);
  });
  return p;
}

/** Opened from a link: the tab's top (controls and the filter's images) in view, `figure` flashed once. */
function flash(root, figure) {
  if (root.getBoundingClientRect().top < 0) root.scrollIntoView({ block: "start", behavior: "instant" });
  figure.classList.add("flash");
  setTimeout(() => figure.classList.remove("flash"), 1200);
}

/** A filter's top examples (a click opens the image pinned in the Embedding map). */
function paintExamples(p, detail, shell) {
  const names = detail.class_names;
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
        title: `image #${ex.id}: activation ${formatNumber(ex.activation, 3)} — click to find it in the Embedding map`,
        style: { cursor: "pointer" },
      },
      canvas,
      h("figcaption", {}, h("span", { text: formatNumber(ex.activation, 2) }), label),
    );
    fig.addEventListener("click", () => shell.open("embedding", { image: ex.id, run: p.run.name }));
    return fig;
  });
  if (!items.length) items.push(h("p", { class: "hint", text: "No examples recorded for this filter yet." }));
  if (!p.sheet)
    items.push(
      h("p", { class: "hint", text: "Thumbnails need the sprites (logged with the first embedding)." }),
    );
  setChildren(p.strip, items);
}

/** Every filter's best image, the chosen `filter` framed; as wide as its column. */
function paintMosaic(p, overview, filter) {
  const count = overview.best.length;
  p.mosaic.hidden = !count || !p.sheet;
  if (p.mosaic.hidden) return;
  const L = mosaicLayout(count, Math.max(200, p.best.clientWidth || 680));
  const ctx = sizeCanvas(p.mosaic, L.width, L.height);
  const c = colors();
  ctx.imageSmoothingEnabled = false;
  overview.best.forEach((ex, f) => {
    const x = (f % L.cols) * L.cell;
    const y = Math.floor(f / L.cols) * L.cell;
    const at = ex && cell(p.sheet, ex.id);
    if (at && at.atlas)
      ctx.drawImage(at.atlas, at.sx, at.sy, at.w, at.h, x + 1, y + 1, L.cell - 2, L.cell - 2);
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
  p.mosaic.dataset.filters = String(count);
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
