// The skeleton every view is built on: a layer select, a step slider over the logged steps,
// one panel per selected run (side by side for a comparison of up to 4 runs), the empty state
// (its hint from the table of kinds the shell reads from api/runs/list) and the guard against
// stale answers.
//
// A comparison: the layer select lists the layers of the first selected run that has any (the
// reference); every other run shows the layer in the same role (steps.js roleLayer: the same name,
// else the same relative position in its own list in the model's order, from the run's layer_order
// record, so the first conv of one architecture lines up with the first conv of another) unless its
// panel's own layer select picked another. The slider moves over the union of the runs' steps ("sync by step")
// or the reference run's steps ("fraction", "epoch": shell.sync); each panel shows its own last
// logged step at or before the slider's step carried over to its run, and says when that differs
// (that line is the panel's one statement of its step: the view's note then leaves the step out).
//
// The panels fill the row: as many to a row as fit at PANEL_MIN px (widgets.js panelColumns, kept
// up to date by a ResizeObserver), and a panel at least WIDE_PANEL px wide shows its details beside
// its figure (style.css, .panels[data-wide]).
//
// A view supplies what is its own (see `layerView`'s spec): its controls, how a panel is made,
// what a panel loads when the runs or the layer change, and how a panel draws a step. Answers
// that arrive after the selection moved on are dropped here, so no view repeats that logic.
import { h, field, message, select, setChildren } from "./dom.js";
import { runNames, stepNote } from "./format.js";
import {
  epochEnds,
  layerUnion,
  layersWith,
  modelOrder,
  panelStep,
  panelStepNote,
  roleLayer,
  unionSteps,
} from "./steps.js";
import {
  GROUP_ABOVE,
  PANEL_GAP,
  WIDE_PANEL,
  fillLayerSelect,
  filterLayers,
  frameScheduler,
  panelColumns,
  panelSet,
  setLoading,
  stepSlider,
} from "./widgets.js";

/** A panel's frame: <article class="panel"> with the run's name, a line for skipped snapshots (filled by
 * layerView) and a note line; the view adds the rest. */
export function basePanel(run, layer, className = "panel") {
  const p = { run, layer, steps: [], wanted: null };
  p.note = h("div", { class: "panel-note" });
  // Filled by layerView in a comparison: the panel's own layer select and where its step lies.
  p.picker = h("div", { class: "panel-picker", hidden: true });
  p.stepLine = h("div", { class: "panel-step", hidden: true });
  p.dropped = h("div", { class: "panel-note panel-dropped", role: "status", hidden: true });
  p.el = h(
    "article",
    { class: className, dataset: { run: run.name } },
    h("h3", { class: "panel-title", text: run.name }),
    p.picker,
    p.stepLine,
    p.note,
    p.dropped, // after the view's note: the first .panel-note of a panel is the view's
  );
  return p;
}

/** A panel with nothing to show at any step (a view's `none`): `text` in its note, its figure hidden. */
export function emptyPanel(p, text) {
  p.note.textContent = text;
  p.figure.hidden = true;
}

/** "2 patterns snapshots skipped (last at step 180): the previous one was still running", for the
 * background snapshots of view `view` that the run dropped (api/runs/list's `dropped`), and "showing 12 of
 * at least 40 kernels snapshots of conv1: ..." for its series TensorBoard sampled (`sampled`, a user's
 * --samples_per_plugin cap); "" when none. */
export function droppedNotice(run, view) {
  const dropped = Object.entries((run && run.dropped) || {})
    .filter(([, d]) => d && d.view === view && d.count > 0)
    .map(([name, d]) => {
      const what = `${d.count} ${name} snapshot${d.count === 1 ? "" : "s"} skipped`;
      return `${what} (last at step ${d.last_step}): the previous one was still running`;
    });
  const sampled = ((run && run.sampled) || [])
    .filter((s) => s && s.view === view && s.kept < s.logged)
    .map((s) => {
      const of = `${s.kind} snapshots${s.layer ? ` of ${s.layer}` : ""}`;
      return `showing ${s.kept} of at least ${s.logged} ${of}: TensorBoard kept a sample (--samples_per_plugin cnnviz=0 keeps all)`;
    });
  return [...dropped, ...sampled].join("; ");
}

/**
 * Build a view in `root`. `spec`:
 *  - name: the view's name in the table (its hint, its intents from shell.open);
 *  - nothing: what the empty state says is missing ("kernels" -> "No kernels logged in run");
 *  - kind: the summary kind whose logged layers the view shows (default: the view's name), or
 *    layersOf(run) -> layer names with this view's data (in place of kind);
 *  - layerLabel, layerAria: the layer select's label and accessible name ("Layer", "layer");
 *  - setup(view) -> {controls: [elements], before: [elements], after: [elements]}: the view's own
 *    controls (view.layerField and view.slider.el are placed by the view), elements above the panels
 *    (hidden with the controls in the empty state) and below them;
 *  - makePanel(run, layer) -> panel (from basePanel, with a `figure` element that shows loading);
 *  - load(panel, layer) -> {fields} set on the panel when still current (its series, e.g. steps);
 *  - stepsOf(panel) -> the panel's logged steps (default panel.steps);
 *  - none(panel): the panel has no step to show;
 *  - peek(panel, step, index) -> data already in memory (drawn in the same frame), else undefined;
 *  - ready(panel, step) -> whether fetch answers from memory (no loading overlay);
 *  - fetch(panel, step, index) -> Promise of what paint needs (omit: paint has all it needs);
 *  - paint(panel, data, step, index): draw (view.state.step is, while it runs, the step asked of
 *    this panel: the slider's step carried over to its run); prefetch: false to not fetch the
 *    neighbouring steps;
 *  - take(intent, layers) -> a layer to show for an intent from shell.open or a link (or null; without
 *    take, intent.layer); urlState() -> what a link keeps beside layer and step ({filter}, {image});
 *  - refresh(runs, intent, live): work beside the layer's (runs changed or reload); awaited;
 *  - empty(runs) -> true when the view shows its own empty state;
 *  - onLayer(layer), afterDraw(), redraw(), destroy(), keep(panel), drop(panel).
 * Returns {update, redraw, destroy} for the shell.
 */
export function layerView(root, shell, spec) {
  const layersOf = spec.layersOf || ((run) => layersWith(run, spec.kind || spec.name));
  // layer: the reference run's; step: the slider's; picked: layers picked in a panel's own select (run -> layer).
  const state = { layer: null, step: null, picked: new Map() };
  let layers = [];
  let ref = { name: "", steps: [], ends: [] }; // the run whose steps the slider moves over (fraction, epoch)
  let panels = [];
  let token = 0;
  const scheduleDraw = frameScheduler(() => drawAll());
  const syncOf = (shown) => (shown.length > 1 && shell.sync ? shell.sync : "step"); // a comparison's sync
  const chooseLayer = (v) => {
    if (!layers.includes(v) || v === state.layer) return;
    state.layer = v;
    state.picked.clear(); // the other runs follow the new layer's role
    if (spec.onLayer) spec.onLayer(v);
    picker.fill(layers, state.layer);
    shell.busy(update());
  };
  const picker = layerPicker(spec, chooseLayer);
  const slider = stepSlider((step) => {
    state.step = step;
    scheduleDraw();
  });
  const view = {
    state,
    slider,
    layerField: picker.el,
    /**
     * Show `layer`, as if picked in the layer select; a layer only another compared run has (a click in
     * its panel) is picked in that panel's own select.
     */
    selectLayer(layer) {
      if (layers.includes(layer)) return chooseLayer(layer);
      const others = panels.filter((p) => layersOf(p.run).includes(layer));
      if (!others.length) return;
      for (const p of others) state.picked.set(p.run.name, layer);
      shell.busy(update());
    },
    get panels() {
      return panels;
    },
    /** Several runs side by side (panels draw smaller). */
    get compared() {
      return panels.length > 1;
    },
    /** A check that is true while nothing newer was asked for. */
    live() {
      const my = token;
      return () => my === token;
    },
    redraw: () => drawAll(),
    update: () => shell.busy(update()),
  };
  const parts = spec.setup(view);
  const controls = h("div", { class: "controls" }, parts.controls);
  const above = parts.before || []; // hidden with the controls when there is nothing to show
  const panelRow = h("div", { class: "panels" });
  const runPanels = panelSet(panelRow, (run, layer) => spec.makePanel(run, layer), {
    keep: spec.keep,
    drop: spec.drop,
  });
  setChildren(root, controls, above, panelRow, parts.after || []);
  const layout = () => layoutPanels(panelRow, panels.length);
  const resizing = typeof ResizeObserver === "function" ? new ResizeObserver(layout) : null;
  if (resizing) resizing.observe(panelRow);

  function showControls(on) {
    controls.hidden = !on;
    for (const el of above) el.hidden = !on;
  }

  function showEmpty(runs) {
    showControls(false);
    panels = runPanels.reset();
    layout();
    if (spec.empty && spec.empty(runs)) return setChildren(panelRow);
    const hint = h("p", { text: shell.hint(spec.name) });
    setChildren(panelRow, message("empty", `No ${spec.nothing} logged in ${runNames(runs)}`, hint));
  }

  /** A pick in panel `p`'s own select: the reference panel's moves the view's select. */
  function pickInPanel(p, isRef, v) {
    if (isRef) return chooseLayer(v);
    state.picked.set(p.run.name, v);
    shell.busy(update());
  }

  async function updateLayers(runs, intent, live) {
    const own = runs.map((run) => modelOrder(run, layersOf(run))); // each run's layers, in the model's order
    const refIndex = own.findIndex((list) => list.length > 0);
    if (refIndex < 0) return showEmpty(runs);
    layers = layerUnion([runs[refIndex]], layersOf);
    showControls(true);
    takeIntent(spec, state, intent, layers, runs);
    picker.fill(layers, state.layer);
    panels = runPanels.sync(runs, panelLayers(state, runs, own, refIndex));
    layout();
    showDropped(panels, spec.name);
    const pick = (p, isRef) => (v) => pickInPanel(p, isRef, v);
    const compared = panels.length > 1;
    panels.forEach((p, i) => fillPanelPicker(spec, p, own[i], layersOf, compared, pick(p, i === refIndex)));
    await loadPanels(spec, panels, live);
    if (!live()) return;
    ref = reference(spec, panels[refIndex]);
    const sliderSteps =
      syncOf(panels) === "step" ? unionSteps(...panels.map((p) => stepsOf(spec, p))) : ref.steps;
    state.step = slider.setSteps(sliderSteps, state.step);
    if (intent && Number.isInteger(intent.step)) slider.select(intent.step); // a link's step
    drawAll();
  }

  async function update() {
    token++;
    const live = view.live();
    const runs = shell.selectedRuns();
    const intent = shell.takeIntent(spec.name);
    await Promise.all([
      updateLayers(runs, intent, live),
      spec.refresh ? spec.refresh(runs, intent, live) : null,
    ]);
  }

  function drawAll() {
    const sync = syncOf(panels);
    for (const p of panels) drawPanel(spec, view, p, sync, ref);
    if (spec.afterDraw) spec.afterDraw();
  }

  return {
    update,
    redraw: () => (spec.redraw ? spec.redraw() : drawAll()),
    urlState: () => linkState(spec, state, panels, slider),
    /** The slider's logged steps (the shell counts the new ones after a reload). */
    steps: () => slider.steps,
    destroy() {
      token++;
      if (resizing) resizing.disconnect();
      slider.stop();
      scheduleDraw.cancel();
      if (spec.destroy) spec.destroy();
    },
  };
}

/** What a link keeps of a view (the shell's URL state): layer, step and the keys of spec.urlState(). */
function linkState(spec, state, panels, slider) {
  return {
    layer: state.layer,
    // Layers picked in a panel's own select, one entry per run ("" follows the role); none: left out.
    layers: panels.length > 1 ? panels.map((p) => state.picked.get(p.run.name) || "") : null,
    step: slider.step,
    ...(spec.urlState ? spec.urlState() : {}),
  };
}

/** The run whose steps the slider moves over when synced by fraction or epoch: the reference panel's. */
function reference(spec, refPanel) {
  return { name: refPanel.run.name, steps: stepsOf(spec, refPanel), ends: epochEnds(refPanel.run) };
}

/** Each panel's line of the background snapshots its run dropped (droppedNotice), hidden when none. */
function showDropped(panels, view) {
  for (const p of panels.filter((panel) => panel.dropped)) {
    p.dropped.textContent = droppedNotice(p.run, view);
    p.dropped.hidden = !p.dropped.textContent;
  }
}

/**
 * The view's layer select, with a search box past GROUP_ABOVE layers (the select then groups them by stage
 * and the box filters it; Enter picks the first match). `choose(layer)`: a layer picked.
 * Returns {el, fill(layers, selected)}.
 */
function layerPicker(spec, choose) {
  const aria = spec.layerAria || "layer";
  const layerSelect = select([], null, choose, { class: "layer", "aria-label": aria });
  const search = h("input", {
    type: "search",
    class: "layer-search",
    placeholder: "filter layers",
    "aria-label": `filter ${aria}s`,
  });
  const matches = h("span", { class: "layer-matches" });
  const searchBox = h("span", { class: "layer-search-box", hidden: true }, search, matches);
  let layers = [];
  let current = null;
  const fill = (list, selected) => {
    [layers, current] = [list, selected];
    const n = fillLayerSelect(layerSelect, layers, selected, search.value);
    searchBox.hidden = layers.length <= GROUP_ABOVE;
    matches.textContent = search.value.trim() ? `${n} of ${layers.length}` : `${layers.length} layers`;
  };
  search.addEventListener("input", () => fill(layers, current));
  search.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    const first = filterLayers(layers, search.value)[0];
    if (first) choose(first);
  });
  const el = h("span", { class: "layer-picker" }, field(spec.layerLabel || "Layer", layerSelect), searchBox);
  return { el, fill };
}

/** As many panels to a row as fit, the rows balanced; `data-wide` when a panel has room for its details beside its figure. */
function layoutPanels(panelRow, count) {
  const width = panelRow.clientWidth;
  if (!width) return; // not shown (another tab): laid out when it is
  const columns = panelColumns(count, width);
  panelRow.style.setProperty("--columns", String(columns));
  panelRow.dataset.columns = String(columns);
  panelRow.dataset.wide = String((width - PANEL_GAP * (columns - 1)) / columns >= WIDE_PANEL);
}

/** The layer an intent from shell.open or a link asks for (spec.take, else intent.layer), else the current one if
 * the reference run has it, else its first; a link's per-run layers, in the order of the runs ("" follows the role). */
function takeIntent(spec, state, intent, layers, runs) {
  const wanted = intent ? (spec.take ? spec.take(intent, layers) : intent.layer) : null;
  if (wanted && layers.includes(wanted)) state.layer = wanted;
  if (!layers.includes(state.layer)) state.layer = layers[0];
  if (intent && Array.isArray(intent.layers)) {
    state.picked.clear();
    intent.layers.forEach((l, i) => runs[i] && l && state.picked.set(runs[i].name, l));
  }
}

/** Each run's layer: the reference run's is the view's; another run's is the one picked in its panel, else the
 * layer in the same role (a run without this view's data shows its empty state). */
function panelLayers(state, runs, own, refIndex) {
  return runs.map((run, i) => {
    if (!own[i].length || i === refIndex) return state.layer;
    const picked = state.picked.get(run.name);
    return own[i].includes(picked) ? picked : roleLayer(own[refIndex], state.layer, own[i]);
  });
}

/** In a comparison (`compared`), panel `p`'s own layer select (its run's layers); `onPick(layer)` when one is picked. */
function fillPanelPicker(spec, p, ownLayers, layersOf, compared, onPick) {
  if (!p.picker) return;
  p.el.dataset.layer = p.layer;
  p.picker.hidden = !compared || !ownLayers.length;
  if (p.picker.hidden) return setChildren(p.picker);
  const sorted = layerUnion([p.run], layersOf);
  const aria = `${spec.layerAria || "layer"} of run ${p.run.name}`;
  const pick = select(sorted, p.layer, onPick, { class: "panel-layer", "aria-label": aria });
  setChildren(p.picker, field(spec.layerLabel || "Layer", pick));
}

/** Each panel's `spec.load` answer set on it while still `live`; a failure said in its note. */
async function loadPanels(spec, panels, live) {
  await Promise.all(
    panels.map(async (p) => {
      setLoading(p.figure, true);
      try {
        const fields = await spec.load(p, p.layer);
        if (live()) Object.assign(p, fields);
      } catch (error) {
        if (live()) p.note.textContent = `Could not load: ${error.message}`;
      } finally {
        setLoading(p.figure, false);
      }
    }),
  );
}

const stepsOf = (spec, p) => (spec.stepsOf ? spec.stepsOf(p) : p.steps);

function prefetch(spec, p, steps, i) {
  for (const j of [i + 1, i - 1]) if (j >= 0 && j < steps.length) spec.fetch(p, steps[j], j).catch(() => {});
}

/** Run `paint` with view.state.step set to `target` (the step asked of one panel), then restore it. */
function asking(view, target, paint) {
  const slider = view.state.step;
  view.state.step = target;
  try {
    paint();
  } finally {
    view.state.step = slider;
  }
}

/**
 * In a comparison the panel's step line says its step (and why it is not the slider's): the view's note
 * then drops its own "step N (last logged at or before M)", so the step is said once.
 */
function stepOnce(view, p, step, target) {
  if (!p.stepLine || p.stepLine.hidden || !p.note) return;
  const said = p.note.textContent;
  for (const verb of ["logged", "measured"]) {
    const prefix = stepNote(step, target, verb);
    if (said === prefix) return void (p.note.textContent = "");
    if (said.startsWith(`${prefix} · `)) return void (p.note.textContent = said.slice(prefix.length + 3));
  }
}

/**
 * Draw panel `p` at the slider's step carried over to its run by `sync` (its last logged step at
 * or before that): from memory in this frame when `spec.peek` has it, else once `spec.fetch`
 * answers, unless the panel, the step or the selection changed meanwhile. In a comparison the
 * panel's step line says where its step lies against the slider's.
 */
async function drawPanel(spec, view, p, sync, ref) {
  const steps = stepsOf(spec, p);
  const slider = view.state.step;
  const at = panelStep(sync, slider, ref, { steps, ends: epochEnds(p.run) });
  if (p.stepLine) {
    p.stepLine.hidden = view.panels.length < 2;
    p.stepLine.textContent = panelStepNote(sync, slider, at, steps[steps.length - 1], ref.name);
    p.el.dataset.shownStep = at.step === null ? "" : String(at.step);
    p.stepLine.dataset.differs = String(at.step !== slider);
  }
  if (!steps.length) return spec.none(p);
  p.figure.hidden = false;
  const i = at.index;
  const step = steps[i];
  p.wanted = step;
  const cached = spec.peek ? spec.peek(p, step, i) : undefined;
  if (cached !== undefined || !spec.fetch) {
    setLoading(p.figure, false);
    asking(view, at.target, () => spec.paint(p, cached, step, i));
    stepOnce(view, p, step, at.target);
    return;
  }
  const live = view.live();
  if (!spec.ready || !spec.ready(p, step)) setLoading(p.figure, true);
  try {
    const data = await spec.fetch(p, step, i);
    if (p.wanted !== step || !live() || !view.panels.includes(p)) return;
    setLoading(p.figure, false);
    asking(view, at.target, () => spec.paint(p, data, step, i));
    stepOnce(view, p, step, at.target);
    if (spec.prefetch !== false) prefetch(spec, p, steps, i);
  } catch (error) {
    if (!live()) return;
    setLoading(p.figure, false);
    p.note.textContent = `Could not load step ${step}: ${error.message}`;
  }
}
