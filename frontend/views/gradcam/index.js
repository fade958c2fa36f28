// Grad-CAM view: the probe images with their Grad-CAM heat-maps at a training step (probe image
// underneath, heat-map on top with an opacity slider), each with its label, prediction and
// probability (misclassified ones marked); a "watch one image over training" strip with its
// probabilities and CAM peak at every logged step; and the attribution maps when logged.
// Two colourings: the logged overlay PNG (stretched per image), or the raw CAM on one scale
// per image across all steps (so a map growing stronger over training looks stronger).
// Every picture says what it shows: the class each map explains against the predicted one, the
// map's native resolution, a colour bar with the scale's numbers, and the steps whose CAM peak is an
// outlier above the shared scale (the route's robust scale; those steps are clipped and named).
// Routes: api/gradcam/step, api/gradcam/image, api/gradcam/maps (+ PNGs from api/runs/image).
import { field, h, setChildren, stateToggle } from "../../dom.js";
import { className, percent, stepNote } from "../../format.js";
import { basePanel, layerView } from "../../layer_view.js";
import { camLayers, camReady, camStep, camSteps, watchSeries } from "./data.js";
import { buildStrip, camCard, drawAttributions, drawColourBar, drawWatchChart, markStrip } from "./draw.js";
import {
  camNumber,
  colourBarTicks,
  explainsNote,
  explainsText,
  nativeNote,
  outlierText,
  predictedItem,
} from "./explain.js";
import { picture } from "../top_images/data.js";
import { drawFaithfulness } from "./faithfulness.js";

export function create(root, shell) {
  const st = { image: 0, opacity: 0.6, colouring: "overlay", only: "all", explain: "target" };
  let view;

  function applyOpacity() {
    root.style.setProperty("--cam-opacity", String(st.opacity));
    root.dataset.opacity = String(st.opacity);
  }

  function setup(v) {
    view = v;
    applyOpacity();
    return { controls: [view.layerField, view.slider.el, ...camControls(st, view, applyOpacity)] };
  }

  function makePanel(run, layer) {
    const p = basePanel(run, layer, "panel cam-panel");
    p.watchKey = "";
    p.grid = h("div", { class: "cam-grid", role: "listbox", "aria-label": "probe images" });
    p.explain = h("div", { class: "cam-explain hint" });
    p.barTitle = h("div", { class: "chart-title cam-bar-title" });
    p.bar = h("canvas", { class: "cam-colourbar" });
    p.key = h("div", { class: "cam-key" }, p.barTitle, p.bar);
    p.figure = h("div", { class: "figure" }, p.explain, p.key, p.grid);
    p.watchTitle = h("div", { class: "chart-title watch-title" });
    p.strip = h("div", { class: "watch-strip" });
    p.chart = h("canvas", { class: "chart watch-chart" });
    p.attributions = h("div", { class: "attribution-row" });
    p.detail = h("div", { class: "cam-detail" });
    p.watch = h("section", { class: "watch" }, p.watchTitle, p.detail, p.strip, p.chart, p.attributions);
    p.el.append(p.figure, p.watch);
    return p;
  }

  function none(p) {
    p.note.textContent = "No Grad-CAM logged for this layer in this run.";
    setChildren(p.grid);
    p.watch.hidden = true;
  }

  function paint(p, loaded, step) {
    const { data, maps } = loaded;
    const wrongCount = data.images.filter((x) => x.misclassified === true).length;
    const judged = data.images.filter((x) => x.misclassified !== null).length;
    const parts = [stepNote(step, view.state.step)];
    if (judged) parts.push(`${judged - wrongCount} of ${judged} probe images classified correctly`);
    if (!loaded.probes.length) parts.push("probe images not logged: heat-maps shown alone");
    p.note.textContent = parts.join(" · ");
    p.el.dataset.step = String(step);
    if (st.image >= data.images.length) st.image = 0;
    // the cards as the chosen class explains them (the predicted class's maps: its peak, scale and outliers)
    loaded.items =
      loaded.explain === "predicted"
        ? data.images.map((x) => predictedItem(x, maps, data.step))
        : data.images;
    const shown = loaded.items.filter((x) => st.only === "all" || x.misclassified === true);
    const cards = shown.map((item) => camCard(item, loaded, st.image, () => choose(item.index)));
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
    p.grid.dataset.colouring = loaded.raw ? "raw" : "overlay";
    p.grid.dataset.overlays = data.overlays_logged === false ? "drawn" : "logged";
    p.grid.dataset.explains = loaded.explain;
    // "Explain" is offered when a panel's maps explain the labels and its run logged the predicted class's too
    p.offersPredicted = data.explains === "label" && Boolean(data.predicted_maps_logged);
    const choice = root.querySelector(".explain-field");
    if (choice) choice.hidden = !view.panels.some((q) => q.offersPredicted);
    explainPanel(p, loaded, Math.min(st.image, data.images.length - 1), view.compared);
    drawWatch(p, loaded);
  }

  function choose(i) {
    st.image = i;
    for (const p of view.panels) p.watchKey = "";
    view.redraw();
  }

  async function drawWatch(p, loaded) {
    const { data } = loaded;
    const index = Math.min(st.image, data.images.length - 1);
    p.watch.hidden = index < 0;
    if (index < 0) return;
    const key = `${index}|${p.steps.length}|${p.steps[p.steps.length - 1]}|${loaded.explain}`;
    const live = view.live();
    if (p.watchKey !== key) {
      let watch;
      try {
        watch = await watchSeries(p.run.name, p.layer, index, view.compared ? 12 : 24, loaded.explain);
      } catch (error) {
        const text = `Could not load this image's history: ${error.message}`;
        if (live()) setChildren(p.strip, h("p", { class: "hint", text }));
        return;
      }
      if (!live() || Math.min(st.image, data.images.length - 1) !== index) return;
      p.watchKey = key;
      p.watchData = watch;
      buildStrip(p, watch, picture, (step) => view.slider.select(step));
    }
    markStrip(p, data.step);
    const item = loaded.items[index];
    const said = explainsText(
      item,
      data.class_names,
      loaded.explain === "predicted" ? "predicted" : data.explains,
    );
    const label = className(data.class_names, item.label);
    p.detail.textContent = `Probe #${index}${label ? ` (${label})` : ""} at step ${data.step}: ${said.explains} · ${said.predicted || "prediction not logged"}${said.differ ? " — they differ: the map shows the evidence for the explained class, not for the prediction" : ""}`;
    p.detail.classList.toggle("differ", said.differ);
    drawWatchChart(p, p.watchData, data.step, view.compared ? 380 : 560);
    drawAttributions(p, loaded, index, picture);
    drawFaithfulness(p, data.step, index, { live, width: view.compared ? 380 : 560 });
  }

  const raw = () => st.colouring === "raw";
  return layerView(root, shell, {
    name: "gradcam",
    nothing: "Grad-CAM",
    layersOf: camLayers,
    take(intent) {
      if (Number.isInteger(intent.image)) st.image = intent.image; // a link's probe image
      return intent.layer;
    },
    urlState: () => ({ image: st.image }),
    setup,
    makePanel,
    keep: (p) => (p.watchKey = ""), // new steps may have arrived: refresh the strip
    load: async (p, layer) => ({ steps: await camSteps(p.run, layer) }),
    none,
    ready: (p, step) => camReady(p.run.name, p.layer, step, raw(), st.explain),
    fetch: (p, step) => camStep(p.run.name, p.layer, step, raw(), st.explain),
    paint,
  });
}

/**
 * Which class the maps explain, their native resolution, the outlier steps and the colour bar (of image
 * `index`; narrower when `compared`).
 */
function explainPanel(p, loaded, index, compared) {
  const { data, overlays, probes, maps, raw } = loaded;
  const outliers = outlierText(data.outlier_steps);
  setChildren(
    p.explain,
    h("div", { class: "cam-explains-note", text: explainsNote(data, loaded.explain) }),
    h("div", {
      class: "cam-native",
      text: nativeNote(data.layer, data.cam_shape, overlays[0] || probes[0]),
    }),
    outliers ? h("div", { class: "cam-outliers", text: outliers }) : null,
  );
  const item = loaded.items[index];
  let ticks = [];
  if (raw && maps && item) {
    const top = maps.scale[index];
    ticks = colourBarTicks(top);
    p.barTitle.textContent = `Raw CAM of probe #${index}, one scale over all logged steps: 0 – ${camNumber(top)} (colour = value ÷ ${camNumber(top)}, clipped above)`;
  } else if (item) {
    const known = item.cam_max !== null && item.cam_max !== undefined;
    ticks = [
      { t: 0, text: known ? "min" : "low" },
      { t: 1, text: known ? `peak ${camNumber(item.cam_max)}` : "high" },
    ];
    p.barTitle.textContent = `${data.overlays_logged === false ? "Overlay" : "Logged overlay"}: each map stretched from its own minimum to its peak${known ? ` (probe #${index} at step ${data.step}: peak ${camNumber(item.cam_max)})` : " (raw maps not logged: the values are unknown)"}`;
  }
  p.key.hidden = !item;
  drawColourBar(p.bar, ticks, compared ? 260 : 320);
}

/** Opacity of the heat-maps, their colouring and which images: fields that change `st` and redraw. */
function camControls(st, view, applyOpacity) {
  const opacity = h("input", {
    type: "range",
    min: "0",
    max: "1",
    step: "0.05",
    value: String(st.opacity),
    class: "opacity-range",
    "aria-label": "heat-map opacity",
  });
  const readout = h("output", { class: "opacity-readout", text: percent(st.opacity) });
  opacity.addEventListener("input", () => {
    st.opacity = Number(opacity.value);
    readout.textContent = percent(st.opacity);
    applyOpacity();
  });
  const redraw = () => view.redraw();
  const colouring = stateToggle(
    st,
    "colouring",
    { overlay: "overlay", raw: "raw CAM, shared scale" },
    redraw,
    {
      class: "colouring",
      "aria-label": "heat-map colouring",
    },
  );
  colouring.title =
    "Overlay: each map stretched to its own range (shows where). Raw CAM: one colour scale per image over all steps (shows how strongly, comparable over training).";
  const only = stateToggle(st, "only", { all: "all", wrong: "misclassified" }, redraw, {
    class: "only",
    "aria-label": "which images",
  });
  return [
    field("Heat-map opacity", h("span", { class: "opacity-box" }, opacity, readout)),
    field("Colouring", colouring),
    field("Show", only),
    explainField(st, view),
  ];
}

/**
 * "Explain: label | predicted class": which class's maps the cards show. Offered when a panel's maps explain
 * the labels and the predicted class's maps are logged (`paint` shows it then); hidden otherwise.
 */
function explainField(st, view) {
  const choice = stateToggle(
    st,
    "explain",
    { target: "label", predicted: "predicted class" },
    () => {
      for (const p of view.panels) p.watchKey = "";
      view.redraw();
    },
    { class: "explain-choice", "aria-label": "which class the maps explain" },
  );
  choice.title =
    "Label: the maps logged for each image's label. Predicted class: the maps of the class the network predicted (logged with them; the same map where the two agree).";
  const wrapper = field("Explain", choice);
  wrapper.classList.add("explain-field");
  wrapper.hidden = true;
  return wrapper;
}
