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
 * The panels of a view, one per selected run for one layer. `sync(runs, layer)` rebuilds them
 * into `row` when the runs or the layer changed (`drop(panel)` on each old one), else keeps them,
 * so their pictures stay while new data loads (`keep(panel)` on each); `reset()` forgets them.
 * Both return the panels now shown.
 */
export function panelSet(row, make, { keep = () => {}, drop = () => {} } = {}) {
  let signature = "";
  let panels = [];
  return {
    sync(runs, layer) {
      const sig = `${runs.map((r) => r.name).join("\u0000")}\u0001${layer}`;
      if (sig !== signature) {
        signature = sig;
        panels.forEach(drop);
        panels = runs.map((run) => make(run, layer));
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
