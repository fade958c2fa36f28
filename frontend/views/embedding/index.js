// Embedding view: the 2-D map (t-SNE by default) of the embedding probe set's CNN codes at a
// training step, drawn on a canvas (up to 50,000 points, see map.js), coloured by label or by prediction,
// misclassified points ringed; hover shows the image (cut from its sprite atlas, loaded then) and its
// label; wheel zooms, drag pans, double-click resets; the step slider animates the points from
// one logged map to the next (the callback aligns successive maps, so clusters stay put);
// the legend toggles classes. Each filter's top images (written by the same snapshot) are the Top
// images tab (views/top_images/, linked from the controls); a click on a top image there opens it
// here, pinned (intent.image, kept in the link).
// Routes: api/embedding/points, api/embedding/sprites.
import { field, h, stateToggle } from "../../dom.js";
import { formatNumber, stepNote } from "../../format.js";
import { basePanel, emptyPanel, layerView } from "../../layer_view.js";
import { layersWith } from "../../steps.js";
import { embeddingSteps, pointsData, pointsReady } from "./data.js";
import { scatterMaps } from "./map.js";
import { spriteSheet } from "../top_images/data.js";

const METHODS = { tsne: "t-SNE", pca: "PCA", umap: "UMAP" };

export function create(root, shell) {
  const st = { colourBy: "label", mark: true, hidden: new Set(), highlight: null, pinned: null };
  let view;
  const size = () => (view.compared ? { width: 440, height: 360 } : { width: 680, height: 480 });
  const maps = scatterMaps(st, { panels: () => view.panels, size });
  const topsLink = h("button", {
    type: "button",
    class: "link-button open-top",
    text: "Top images ▸",
    title: "Each filter's most activating probe images (written with this map): the Top images tab",
    on: { click: () => shell.open("top_images", {}) },
  });

  function setup(v) {
    view = v;
    const colourBy = stateToggle(
      st,
      "colourBy",
      { label: "label", predicted: "prediction" },
      () => {
        st.hidden.clear();
        maps.refresh();
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
      maps.refresh();
    });
    const reset = h("button", {
      type: "button",
      class: "reset-zoom",
      text: "Reset zoom",
      on: { click: () => view.panels.forEach((p) => maps.resetZoom(p)) },
    });
    return {
      controls: [
        view.layerField,
        view.slider.el,
        field("Colour by", colourBy),
        h("label", { class: "field" }, mark, h("span", { class: "field-label", text: "ring misclassified" })),
        reset,
        topsLink,
      ],
    };
  }

  function makePanel(run, layer) {
    const p = basePanel(run, layer);
    Object.assign(p, {
      data: null,
      pos: null,
      bounds: null,
      zoom: { k: 1, tx: 0, ty: 0 },
      anim: null,
      sheet: null,
    });
    p.canvas = h("canvas", {
      class: "scatter",
      tabindex: "0",
      "aria-label": "embedding map: wheel to zoom, drag to pan, double-click to reset",
    });
    p.tip = h("div", { class: "scatter-tip", hidden: true });
    p.legend = h("div", { class: "legend", role: "group", "aria-label": "classes (click to hide or show)" });
    p.figure = h("div", { class: "figure scatter-figure" }, p.canvas, p.tip);
    p.el.append(p.figure, p.legend);
    maps.wire(p);
    return p;
  }

  function paint(p, data, step) {
    const parts = [
      stepNote(data.step, view.state.step),
      `${METHODS[data.method] || data.method || "map"} of the inputs of ${data.layer}`,
      `${data.count} images`,
    ];
    if (data.accuracy !== null && data.accuracy !== undefined)
      parts.push(`accuracy ${formatNumber(100 * data.accuracy, 1)}% (${data.misclassified} misclassified)`);
    p.note.textContent = parts.join(" · ");
    maps.show(p, data, step);
  }

  return layerView(root, shell, {
    name: "embedding",
    nothing: "embedding",
    layerLabel: "Map",
    layerAria: "embedding layer",
    setup,
    makePanel,
    refresh: (runs, intent) => {
      topsLink.hidden = !runs.some((run) => layersWith(run, "top_examples").length);
      // A top image clicked in the Top images tab (or a link's image): pinned on the map.
      if (intent && Number.isInteger(intent.image)) st.pinned = intent.image;
    },
    urlState: () => ({ image: st.pinned }),
    drop: (p) => p.anim && cancelAnimationFrame(p.anim.frame),
    load: async (p, layer) => {
      const [steps, sheet] = await Promise.all([embeddingSteps(p.run, layer), spriteSheet(p.run)]);
      return { steps, sheet };
    },
    none: (p) => emptyPanel(p, "No embedding logged for this map in this run."),
    ready: (p, step) => pointsReady(p.run.name, p.layer, step),
    fetch: (p, step) => pointsData(p.run.name, p.layer, step),
    paint,
    redraw: () => maps.refresh(),
    destroy: () => view.panels.forEach((p) => p.anim && cancelAnimationFrame(p.anim.frame)),
  });
}
