// Patterns view: a layer's filter-pattern gallery (the image that maximises each filter, by
// activation maximisation) at a training step, with a step slider to watch the patterns form.
// Click a filter: its pattern beside its kernel (when the layer's kernels are logged), the
// activation its pattern reached over training, its activation rate and dead status (at the
// nearest measured step), and its most activating images (with a link to Top images).
// Below the gallery, when a run has DeepDreams (`tb-cnnviz dream`): a DeepDream panel with the
// original and the dreamed image side by side, the layers dreamed on and the activation gain.
// Routes: api/patterns/step, api/patterns/filter, api/patterns/dream (+ PNGs from api/runs/image, sprites).
import { eventPoint, field, h, message, setChildren, stateToggle } from "../../dom.js";
import { stepNote } from "../../format.js";
import { basePanel, layerView } from "../../layer_view.js";
import { layersWith } from "../../steps.js";
import { dreams, filterInfo, gallery, galleryReady, patternSteps } from "./data.js";
import { SIZES, drawDetail, drawDreams, drawGallery, galleryHit } from "./draw.js";
import { drawPatternTop } from "../top_images/index.js";
import { spriteSheet } from "../top_images/data.js";

const dreamLayers = (run) => layersWith(run, "dream");

export function create(root, shell) {
  const st = { selected: null, size: "medium" };
  let view;
  const dreamBox = h("section", { class: "dream-section", hidden: true });

  function setup(v) {
    view = v;
    const labels = Object.fromEntries(Object.keys(SIZES).map((size) => [size, size]));
    const size = stateToggle(st, "size", labels, () => view.redraw(), {
      class: "tile-size",
      "aria-label": "tile size",
    });
    return { controls: [view.layerField, view.slider.el, field("Tiles", size)], after: [dreamBox] };
  }

  function makePanel(run, layer) {
    const p = basePanel(run, layer);
    Object.assign(p, { layout: null, data: null });
    p.canvas = h("canvas", {
      class: "pattern-grid",
      title: "Click a filter for its kernel, activation rate and top images",
    });
    p.canvas.addEventListener("click", (event) => {
      if (!p.layout || !p.data) return;
      const i = galleryHit(p.layout, p.data.channels.length, ...eventPoint(event, p.canvas));
      if (i < 0) return;
      const channel = p.data.channels[i];
      st.selected = st.selected === channel ? null : channel;
      view.redraw();
    });
    p.figure = h("div", { class: "figure" }, p.canvas);
    p.detail = h("div", { class: "detail" });
    p.el.append(p.figure, p.detail);
    return p;
  }

  function none(p) {
    p.note.textContent = "No patterns logged for this layer in this run.";
    p.canvas.hidden = true;
    setChildren(p.detail);
  }

  function paint(p, { data, images }, step) {
    const what = [stepNote(step, view.state.step), `${data.channels.length} filters`];
    if (data.optimisation_steps)
      what.push(`${data.optimisation_steps} optimisation steps at ${data.size} px`);
    const failed = (data.failed || []).filter((f) => f === true).length;
    if (failed)
      what.push(
        `${failed} of ${data.channels.length} failed (crossed out: activation reached ≤ 0${data.reference ? " or below the best probe image" : ""})`,
      );
    if (data.stand_ins)
      what.push(
        `${data.stand_ins} of ${data.channels.length} are the first filters standing in: pattern_channels="${data.choice}" found none${data.choice === "dead" ? " dead in the last dead-filter window before this step" : ""}`,
      );
    p.note.textContent = what.join(" · ");
    p.el.dataset.step = String(step);
    p.canvas.hidden = false;
    p.data = data;
    p.layout = drawGallery(p.canvas, data, images, {
      tile: SIZES[st.size],
      width: view.compared ? 400 : 620,
      selected: st.selected,
    });
    p.canvas.dataset.step = String(step);
    showDetail(p, data, images);
  }

  async function showDetail(p, data, images) {
    const channel = st.selected;
    const column = channel === null ? -1 : data.channels.indexOf(channel);
    if (column < 0) {
      setChildren(
        p.detail,
        h("p", {
          class: "hint",
          text: "The number under each pattern is the activation it reached; a crossed-out pattern failed (it drives its filter no more than 0, or less than the best probe image). Click a pattern to see it beside its kernel, with the filter's activation rate and top images.",
        }),
      );
      return;
    }
    const live = view.live();
    let info;
    try {
      info = await filterInfo(p.run.name, p.layer, channel, data.step);
    } catch (error) {
      const text = String(error.message || error);
      if (live())
        setChildren(p.detail, message("error", `Could not load filter #${channel}`, h("p", { text })));
      return;
    }
    if (!live() || st.selected !== channel || p.data !== data) return;
    const top = drawDetail(p.detail, { layer: p.layer, channel, data, image: images[column], info });
    drawPatternTop(top, shell, p.run, p.layer, info.channel, info.top, spriteSheet(p.run));
  }

  async function refreshDreams(runs, live) {
    const items = runs.flatMap((run) => dreamLayers(run).map((layer) => ({ run, layer })));
    if (!items.length) {
      dreamBox.hidden = true;
      setChildren(dreamBox);
      return;
    }
    const loaded = await dreams(items);
    if (live()) drawDreams(dreamBox, runs, loaded, dreamLayers);
  }

  return layerView(root, shell, {
    name: "patterns",
    nothing: "filter patterns",
    onLayer: () => (st.selected = null),
    take(intent, layers) {
      if (!layers.includes(intent.layer)) return null;
      st.selected = intent.filter ?? null;
      return intent.layer;
    },
    urlState: () => ({ filter: st.selected }),
    empty: (runs) => runs.some((run) => dreamLayers(run).length), // only DeepDreams: their panel is the view
    refresh: (runs, intent, live) => refreshDreams(runs, live),
    setup,
    makePanel,
    load: async (p, layer) => ({ steps: await patternSteps(p.run, layer) }),
    none,
    ready: (p, step) => galleryReady(p.run.name, p.layer, step),
    fetch: (p, step) => gallery(p.run.name, p.layer, step),
    paint,
  });
}
