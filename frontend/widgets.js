// Widgets shared by the views: the step slider (with play), per-panel loading overlays, a
// once-per-frame redraw and the per-run panels of a layer.
import { h, setChildren } from "./dom.js";
import { atOrBefore } from "./steps.js";

/**
 * A slider over logged steps. `onStep(step, {final})` runs on every move (final = released).
 * setSteps(steps, step) keeps the chosen step when the list grows; when the slider was at the
 * last step it follows new steps as they arrive (training still running).
 */
export function stepSlider(onStep, { label = "Step" } = {}) {
  let steps = [];
  let timer = null;
  const input = h("input", {
    type: "range",
    min: "0",
    max: "0",
    step: "1",
    value: "0",
    class: "step-range",
    "aria-label": "training step",
  });
  const readout = h("output", { class: "step-readout", text: "–" });
  const play = h("button", {
    type: "button",
    class: "play",
    title: "Play through the logged steps",
    text: "▶ Play",
  });
  const el = h(
    "div",
    { class: "step-slider" },
    h("span", { class: "field-label", text: label }),
    input,
    readout,
    play,
  );

  const current = () => (steps.length ? steps[Number(input.value)] : null);
  const show = () => {
    readout.textContent = steps.length
      ? `${current()}  (${Number(input.value) + 1}/${steps.length})`
      : "no steps";
    el.dataset.step = steps.length ? String(current()) : "";
  };
  input.addEventListener("input", () => {
    show();
    onStep(current(), { final: false });
  });
  input.addEventListener("change", () => onStep(current(), { final: true }));
  const stop = () => {
    if (timer) clearInterval(timer);
    timer = null;
    play.textContent = "▶ Play";
  };
  play.addEventListener("click", () => {
    if (timer) return stop();
    if (Number(input.value) >= steps.length - 1) input.value = "0";
    play.textContent = "❚❚ Pause";
    timer = setInterval(() => {
      if (Number(input.value) >= steps.length - 1) return stop();
      input.value = String(Number(input.value) + 1);
      show();
      onStep(current(), { final: true });
    }, 180);
  });

  return {
    el,
    input,
    get steps() {
      return steps;
    },
    get step() {
      return current();
    },
    /**
     * Replace the list of steps; returns the step now selected. At the last step (or with no
     * steps yet) the slider follows the newest step; otherwise it keeps `wanted` (or the
     * logged step just before it).
     */
    setSteps(newSteps, wanted) {
      const atEnd = steps.length === 0 || Number(input.value) >= steps.length - 1;
      steps = newSteps;
      input.max = String(Math.max(0, steps.length - 1));
      input.disabled = steps.length <= 1;
      play.disabled = steps.length <= 1;
      let index = steps.length - 1;
      if (!atEnd && wanted !== null && wanted !== undefined) index = Math.max(0, atOrBefore(steps, wanted));
      input.value = String(Math.max(0, index));
      show();
      return current();
    },
    /** Select a step by value (nearest logged step at or before it). */
    select(step) {
      input.value = String(Math.max(0, atOrBefore(steps, step)));
      show();
      onStep(current(), { final: true });
    },
    stop,
  };
}

/** Toggle a loading overlay on a panel element (kept over the previous picture, no flicker). */
export function setLoading(panel, on, text = "Loading…") {
  let overlay = panel.querySelector(":scope > .panel-loading");
  if (on && !overlay) {
    overlay = h(
      "div",
      { class: "panel-loading", role: "status" },
      h("span", { class: "spinner", "aria-hidden": "true" }),
      h("span", { text }),
    );
    panel.append(overlay);
  } else if (!on && overlay) {
    overlay.remove();
  }
  panel.classList.toggle("is-loading", on);
}

/** `draw` wrapped to run at most once per animation frame however often it is asked for (slider drags); `.cancel()` drops a pending one. */
export function frameScheduler(draw) {
  let frame = 0;
  const schedule = () => {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      draw();
    });
  };
  schedule.cancel = () => {
    if (frame) cancelAnimationFrame(frame);
    frame = 0;
  };
  return schedule;
}

/**
 * The panels of a view, one per selected run, each for its layer. `sync(runs, layers)` (`layers`:
 * one layer for all runs, or one per run) rebuilds them into `row` when the runs or their layers
 * changed (`drop(panel)` on each old one), else keeps them, so their pictures stay while new data
 * loads (`keep(panel)` on each); `reset()` forgets them. Both return the panels now shown.
 */
export function panelSet(row, make, { keep = () => {}, drop = () => {} } = {}) {
  let signature = "";
  let panels = [];
  return {
    sync(runs, layers) {
      const layerOf = (i) => (Array.isArray(layers) ? layers[i] : layers);
      const sig = runs.map((r, i) => `${r.name}\u0001${layerOf(i)}`).join("\u0000");
      if (sig !== signature) {
        signature = sig;
        panels.forEach(drop);
        panels = runs.map((run, i) => make(run, layerOf(i)));
        setChildren(
          row,
          panels.map((p) => p.el),
        );
      } else {
        panels.forEach((p, i) => {
          p.run = runs[i];
          keep(p);
        });
      }
      return panels;
    },
    reset() {
      signature = "";
      panels = [];
      return panels;
    },
  };
}

export const PANEL_MIN = 440; // CSS px: the narrowest panel that draws a compared view's figures whole (the widest: 440)
export const WIDE_PANEL = 880; // CSS px: from this width a panel shows its details beside its figure (not at 900 px: 868)
export const PANEL_GAP = 12; // CSS px between panels (style.css .panels gap)

/**
 * How many panels of `count` go on one row `width` px wide: as many as fit at `min` px each (with `gap`
 * between them), with the rows balanced (4 panels that do not fit 4 to a row go 2 + 2, not 3 + 1).
 */
export function panelColumns(count, width, { min = PANEL_MIN, gap = PANEL_GAP } = {}) {
  if (!(count > 1)) return 1;
  const fit = Math.max(1, Math.floor((width + gap) / (min + gap)));
  const columns = Math.min(count, fit);
  return Math.ceil(count / Math.ceil(count / columns));
}

/** Page `page` of `total` items `size` to a page: {page (clamped), pages, start, stop} (stop exclusive). */
export function pageBounds(total, size, page) {
  const pages = Math.max(1, Math.ceil(Math.max(0, total) / Math.max(1, size)));
  const p = Math.min(pages - 1, Math.max(0, Math.floor(page) || 0));
  return { page: p, pages, start: p * size, stop: Math.min(total, (p + 1) * size) };
}

/**
 * "◀ 0–127 of 2048 ▶": pages over items (`noun` names them). `onPage(page)` runs on a click;
 * set(total, size, page) redraws it and returns pageBounds (hidden when everything fits one page).
 */
export function pager(onPage, { noun = "filters" } = {}) {
  let bounds = pageBounds(0, 1, 0);
  const prev = h("button", {
    type: "button",
    class: "page-prev",
    text: "◀",
    "aria-label": `previous ${noun}`,
  });
  const next = h("button", { type: "button", class: "page-next", text: "▶", "aria-label": `next ${noun}` });
  const label = h("span", { class: "page-label" });
  const el = h("div", { class: "pager" }, prev, label, next);
  prev.addEventListener("click", () => onPage(bounds.page - 1));
  next.addEventListener("click", () => onPage(bounds.page + 1));
  return {
    el,
    set(total, size, page) {
      bounds = pageBounds(total, size, page);
      el.hidden = bounds.pages <= 1;
      prev.disabled = bounds.page === 0;
      next.disabled = bounds.page >= bounds.pages - 1;
      label.textContent = `${noun} ${bounds.start}–${Math.max(bounds.start, bounds.stop - 1)} of ${total} (page ${bounds.page + 1}/${bounds.pages})`;
      el.dataset.page = String(bounds.page);
      return bounds;
    },
  };
}

/** A layer's stage: its name before the last dotted part ("layer4.2.conv3" -> "layer4.2"; "" for "conv1"). */
export function stageOf(layer) {
  const cut = layer.lastIndexOf(".");
  return cut > 0 ? layer.slice(0, cut) : "";
}

/** Layers in their order, grouped by consecutive stage: [{stage, layers}] (stage "" for top-level layers). */
export function groupLayers(layers) {
  const groups = [];
  for (const layer of layers) {
    const stage = stageOf(layer);
    const last = groups[groups.length - 1];
    if (last && last.stage === stage) last.layers.push(layer);
    else groups.push({ stage, layers: [layer] });
  }
  return groups;
}

/** The layers whose name contains every whitespace-separated word of `query` (case-insensitive). */
export function filterLayers(layers, query) {
  const words = String(query || "")
    .toLowerCase()
    .split(/\s+/)
    .filter(Boolean);
  return words.length ? layers.filter((l) => words.every((w) => l.toLowerCase().includes(w))) : [...layers];
}

export const GROUP_ABOVE = 12; // layer pickers group by stage and offer a search box past this many layers

/**
 * Fill a layer <select>: plain options up to GROUP_ABOVE layers, else one <optgroup> per stage,
 * showing only the layers matching `query` (and `selected`, so the select never shows a layer
 * that is not the one drawn). Returns how many layers match.
 */
export function fillLayerSelect(el, layers, selected, query = "") {
  const grouped = layers.length > GROUP_ABOVE;
  const matching = grouped ? filterLayers(layers, query) : [...layers];
  const shown = layers.filter((l) => l === selected || matching.includes(l));
  const option = (l) => h("option", { value: l, text: l });
  el.replaceChildren(
    ...(grouped
      ? groupLayers(shown).map((g) =>
          g.stage ? h("optgroup", { label: g.stage }, g.layers.map(option)) : g.layers.map(option),
        )
      : shown.map(option)
    ).flat(),
  );
  if (shown.includes(selected)) el.value = selected;
  return matching.length;
}
