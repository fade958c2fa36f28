// Separability view, data: every layer's linear-probe accuracy over training (api/separability/layers)
// and the pure helpers that turn it into what is drawn. No DOM here (tested in tests/frontend/).
import { seriesJSON } from "../../api.js";
import { formatNumber } from "../../format.js";
import { atOrBefore } from "../../steps.js";

/** A run's layers in depth order, each {layer, depth, measured_at, steps, accuracy, chance, ..., outcome}. */
export function separabilityData(run) {
  return seriesJSON("api/separability/layers", { run: run.name });
}

/** The value of `field` of `layer` at logged step `step` (null when not logged or not measured there). */
export function valueAtStep(layer, field, step) {
  const i = layer.steps.indexOf(step);
  if (i < 0 || !layer[field]) return null;
  const v = layer[field][i];
  return v === undefined ? null : v;
}

/**
 * The curves of the accuracy-against-depth chart up to `step`: one per logged step at or before it,
 * oldest first, each {step, ys (one per layer, null where not measured), alpha}. The selected step is
 * opaque; earlier ones fade to `floor`, at most `keep` of them.
 */
export function depthCurves(data, step, { keep = 8, floor = 0.12 } = {}) {
  const steps = data.steps || [];
  if (!steps.length) return [];
  const last = atOrBefore(steps, step);
  const first = Math.max(0, last - keep + 1);
  const shown = steps.slice(first, last + 1);
  return shown.map((s, j) => ({
    step: s,
    ys: data.layers.map((layer) => valueAtStep(layer, "accuracy", s)),
    alpha: shown.length === 1 ? 1 : floor + ((1 - floor) * j) / (shown.length - 1),
  }));
}

/** The chance level at `step`: the first measured one over the layers (the split is the same for all). */
export function chanceAt(data, step) {
  for (const layer of data.layers) {
    const v = valueAtStep(layer, "chance", step);
    if (v !== null) return v;
  }
  return null;
}

/** The heat map's rows (layers, in depth order) × columns (the run's logged steps): accuracy or null. */
export function heatRows(data) {
  return data.layers.map((layer) => data.steps.map((s) => valueAtStep(layer, "accuracy", s)));
}

/** What a heat-map cell (or a point of the chart) says on hover: the accuracy, or why there is none. */
export function cellText(data, row, column) {
  const layer = data.layers[row];
  const step = data.steps[column];
  if (!layer || step === undefined) return "";
  const where = `${layerLabel(layer)} · step ${step}`;
  const i = layer.steps.indexOf(step);
  if (i < 0) return `${where}: not logged`;
  const outcome = layer.outcome ? layer.outcome[i] : 0;
  const accuracy = layer.accuracy[i];
  if (outcome || accuracy === null) {
    const why = (data.outcomes || [])[outcome] || `outcome ${outcome}`;
    return `${where}: no accuracy (${why})`;
  }
  const chance = layer.chance ? layer.chance[i] : null;
  const n = layer.test_images ? layer.test_images[i] : null;
  const ridge = layer.ridge ? layer.ridge[i] : null;
  return (
    `${where}: held-out accuracy ${formatNumber(accuracy, 3)}` +
    (chance !== null ? ` (chance ${formatNumber(chance, 3)}` : " (") +
    (n !== null ? `, ${n} held-out images` : "") +
    (ridge !== null ? `, ridge ${ridge})` : ")")
  );
}

/** A layer's label: its name, "(input)" where the codes are the layer's input (the classifier's). */
export function layerLabel(layer) {
  return layer.measured_at === "input" ? `${layer.layer} (input)` : layer.layer;
}

/** Why nothing is drawn at a step, when no layer was measured there (e.g. too few labels); null otherwise. */
export function unmeasuredNote(data, step) {
  const outcomes = new Set();
  for (const layer of data.layers) {
    const i = layer.steps.indexOf(step);
    if (i < 0) continue;
    if (!layer.outcome || !layer.outcome[i]) return null;
    outcomes.add(layer.outcome[i]);
  }
  if (!outcomes.size) return null;
  return [...outcomes].map((o) => (data.outcomes || [])[o] || `outcome ${o}`).join("; ");
}
